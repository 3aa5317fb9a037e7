# CTest script: export a small H/O model with the Python package, run bpnn_run on a
# water structure, and require JSON with energy, forces and virial.
file(MAKE_DIRECTORY ${WORK})
execute_process(COMMAND ${PYTHON} ${SOURCE}/tests/make_fixture.py ${WORK} RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "could not export the test model (is bpnn_ts installed?)")
endif()
execute_process(COMMAND ${RUN} ${WORK}/model.pt ${WORK}/water.xyz OUTPUT_VARIABLE out RESULT_VARIABLE status)
if(NOT status EQUAL 0 OR NOT out MATCHES "\"energy\"" OR NOT out MATCHES "\"forces\"" OR NOT out MATCHES "\"virial\"")
  message(FATAL_ERROR "bpnn_run failed (${status}): ${out}")
endif()
