// Registers pair_style bpnn with LAMMPS: `plugin load /path/to/bpnnplugin.so`.
#include "lammpsplugin.h"

#include "lammps.h"
#include "pair_bpnn.h"

using namespace LAMMPS_NS;

static Pair* create_pair_bpnn(LAMMPS* lmp) { return new PairBPNN(lmp); }

extern "C" void lammpsplugin_init(void* lmp, void* handle, void* regfunc) {
  lammpsplugin_t plugin;
  plugin.version = static_cast<LAMMPS*>(lmp)->version;  // built against this LAMMPS's headers
  plugin.style = "pair";
  plugin.name = "bpnn";
  plugin.info = "bpnn_ts Behler-Parrinello potential (TorchScript model file)";
  plugin.author = "bpnn_ts developers";
  plugin.creator.v1 = (lammpsplugin_factory1*)&create_pair_bpnn;
  plugin.handle = handle;
  (*(lammpsplugin_regfunc)regfunc)(&plugin, lmp);
}
