# Checks (or, with -DUPDATE=ON, rewrites) the reviewed golden output of fulcrum-gen.
#
#   cmake -DTHRIFT=thrift -DFULCRUM_GEN=build/codegen/fulcrum-gen -DWORK=/tmp/golden \
#         [-DUPDATE=ON] -P codegen/golden/golden.cmake
#
# The build runs it for you: the `fulcrum_codegen_golden` test checks, and
# `cmake --build build --target fulcrum_codegen_regenerate_golden` rewrites the golden files.
cmake_minimum_required(VERSION 3.20)
set(here "${CMAKE_CURRENT_LIST_DIR}")
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
execute_process(COMMAND "${THRIFT}" -r --gen json -out "${WORK}" "${here}/golden.thrift"
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "thrift failed:\n${err}")
endif()
execute_process(COMMAND "${FULCRUM_GEN}" "--idl=${here}/golden.thrift" "--out=${WORK}"
                        "${WORK}/golden.json"
                RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fulcrum-gen failed:\n${err}")
endif()
set(failed "")
foreach(f golden_fulcrum.h golden_fulcrum.cpp)
  if(UPDATE)
    file(COPY_FILE "${WORK}/${f}" "${here}/${f}")
    message(STATUS "rewrote ${here}/${f}")
  else()
    execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files "${here}/${f}" "${WORK}/${f}"
                    RESULT_VARIABLE differs)
    if(differs)
      execute_process(COMMAND diff -u "${here}/${f}" "${WORK}/${f}" OUTPUT_VARIABLE d)
      message(NOTICE "${d}")
      list(APPEND failed ${f})
    endif()
  endif()
endforeach()
if(failed)
  message(FATAL_ERROR "fulcrum-gen's output differs from the golden ${failed}. If the change is "
                      "intended, review the diff above and run: cmake --build <build> --target "
                      "fulcrum_codegen_regenerate_golden")
endif()
