"""Model files: every format bpnn_ts writes and reads, behind the door bpnn_ts/export.py
(`export`, `load`, `inspect`), which nothing here imports.

  records.py      metadata.json and provenance.json (one builder each), the parameter hash,
                  reading the records without loading code (`inspect`), ModelFileError
  frozen.py       what every writer writes: a frozen copy in the asked precision and kernels
  torchscript.py  the TorchScript file (the contract, export/CONTRACT.md): write and load
  pt2.py          `.pt2` files (torch.export + AOTInductor) and their Python front end
  metatomic.py    metatomic files (optional package metatomic-torch)
  format1.py      format-1 files (bpnn_ts 0.1) upgraded to format 2
  eager.py        any model file's weights as an eager BPNNModel (committees, re-export)
  loading.py      `load`: a file of any format and version this bpnn_ts reads
"""
