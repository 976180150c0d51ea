# unit.files: every unit test case runs in one of the per-file ctests.
#
# tests/CMakeLists.txt adds one ctest per unit/*.cpp source of unit_tests,
# selecting its cases by Catch2's filename tag ([#file_stem]). A case whose
# file is not among them (a TEST_CASE in a header, or in a source added some
# other way) would run in none: this lists the binary's filename tags and
# fails on any that is not one of FILES, and on any of FILES with no case.
#
# Takes -DUNIT_TESTS=<path of unit_tests> -DFILES=<stem,stem,...>.
# Run as: cmake -DUNIT_TESTS=... -DFILES=... -P unit_files_check.cmake
cmake_minimum_required(VERSION 3.25)  # IN_LIST
execute_process(COMMAND ${UNIT_TESTS} --filenames-as-tags --list-tags
                OUTPUT_VARIABLE listed RESULT_VARIABLE code)
# Catch2 2's --list-tags exits with the number of tags it listed.
if(NOT code MATCHES "^[0-9]+$")
  message(FATAL_ERROR "cannot run ${UNIT_TESTS} --list-tags: ${code}")
endif()
string(REPLACE "," ";" expected "${FILES}")
string(REGEX MATCHALL "\\[#[^]]+\\]" tags "${listed}")
if(NOT tags)
  message(FATAL_ERROR "no filename tag in the output of ${UNIT_TESTS} --filenames-as-tags --list-tags:\n${listed}")
endif()
set(found "")
foreach(tag ${tags})
  string(REGEX REPLACE "^\\[#(.*)\\]$" "\\1" stem "${tag}")
  list(APPEND found ${stem})
  if(NOT stem IN_LIST expected)
    message(SEND_ERROR "cases of ${stem} run in no ctest: it is not a unit/*.cpp source of unit_tests")
  endif()
endforeach()
foreach(stem ${expected})
  if(NOT stem IN_LIST found)
    message(SEND_ERROR "unit.${stem} runs no case: ${stem}.cpp has no TEST_CASE")
  endif()
endforeach()
list(LENGTH found count)
message(STATUS "${count} unit test files, each run by its own ctest")
