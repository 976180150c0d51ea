# Run by `cmake --install` (and CPack) after the plugin's files are in place:
# compiles their bytecode there, so pytest processes of users who cannot
# write the installed package's __pycache__ do not compile it each time.
# Takes LPD_PLUGIN_DIR (the installed dist-packages directory, without
# DESTDIR) and LPD_PYTHON (the interpreter). A failure only warns: the
# plugin works without its bytecode, just slower to start.
set(plugin_dir "$ENV{DESTDIR}${LPD_PLUGIN_DIR}")
set(strip_args)
if(NOT "$ENV{DESTDIR}" STREQUAL "")
  # File names inside the bytecode (tracebacks) are where the package lands,
  # not the staging directory.
  set(strip_args -s "$ENV{DESTDIR}" -p /)
endif()
execute_process(COMMAND "${LPD_PYTHON}" -m compileall -q ${strip_args} "${plugin_dir}/lpd_pytest"
                        "${plugin_dir}/pytest_live_pause"
                RESULT_VARIABLE compiled)
if(NOT compiled EQUAL 0)
  message(WARNING "the pytest plugin's bytecode was not compiled (${compiled}): pytest compiles it in every process")
endif()
