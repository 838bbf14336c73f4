# Installs the Fulcrum build tree into a scratch prefix, then builds outside projects against
# it with find_package(Fulcrum): one that must work, one whose IDL has a syntax error.
#
#   cmake -DBUILD=<fulcrum build> -DSRC=<this folder> -DWORK=<scratch> -DLINK=ON|OFF
#         -DGENERATOR=Ninja -P run.cmake
cmake_minimum_required(VERSION 3.20)
file(REMOVE_RECURSE "${WORK}")

macro(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
endmacro()

run(${CMAKE_COMMAND} --install "${BUILD}" --prefix "${WORK}/prefix")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed:\n${out}${err}")
endif()

set(link OFF)
if(LINK)
  set(link ON)
endif()
run(${CMAKE_COMMAND} -S "${SRC}/app" -B "${WORK}/app" -G "${GENERATOR}"
    "-DCMAKE_PREFIX_PATH=${WORK}/prefix" "-DFULCRUM_LINK=${link}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring the outside project failed:\n${out}${err}")
endif()
run(${CMAKE_COMMAND} --build "${WORK}/app" -j2)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the outside project failed:\n${out}${err}")
endif()
if(NOT EXISTS "${WORK}/app/greeter_thrift-gen/greeter_fulcrum.h")
  message(FATAL_ERROR "the outside project did not run fulcrum-gen")
endif()
if(link)
  run("${WORK}/app/app")
  if(NOT rc EQUAL 0 OR NOT out MATCHES "outside OK")
    message(FATAL_ERROR "the outside project's binary failed (${rc}):\n${out}${err}")
  endif()
endif()

run(${CMAKE_COMMAND} -S "${SRC}/broken" -B "${WORK}/broken" -G "${GENERATOR}"
    "-DCMAKE_PREFIX_PATH=${WORK}/prefix")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring must succeed even with a broken IDL:\n${out}${err}")
endif()
run(${CMAKE_COMMAND} --build "${WORK}/broken")
if(rc EQUAL 0)
  message(FATAL_ERROR "a syntax error in the IDL did not fail the build")
endif()
if(NOT "${out}${err}" MATCHES "\\[ERROR:[^]]*broken\\.thrift:[0-9]+\\]")
  message(FATAL_ERROR "the build failed without thrift's file:line message:\n${out}${err}")
endif()
message(STATUS "outside project OK; broken IDL failed the build with thrift's file:line message")
