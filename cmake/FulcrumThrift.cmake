# Build-time Thrift code generation.
#
#   fulcrum_thrift_cpp(TARGET echo_thrift IDL path/to/echo.thrift [INCLUDE_DIRS dir ...]
#                      [HEADER_PREFIX dir/sub])
#
# runs the stock compiler (`thrift --gen cpp`) at build time into the build tree and makes a
# static library of the output. Its headers are included by their names ("Echo.h"), or, with
# HEADER_PREFIX, as "dir/sub/Echo.h" (what an installed library wants: no bare names on the
# consumer's include path). Editing the IDL regenerates. The names of the generated files
# are found by running the compiler once at configure time into a scratch folder, so every IDL
# the stock compiler accepts works, whatever it declares.
function(fulcrum_thrift_cpp)
  cmake_parse_arguments(ARG "" "TARGET;IDL;HEADER_PREFIX" "INCLUDE_DIRS" ${ARGN})
  if(NOT ARG_TARGET OR NOT ARG_IDL)
    message(FATAL_ERROR "fulcrum_thrift_cpp: TARGET and IDL are required")
  endif()
  get_filename_component(idl "${ARG_IDL}" ABSOLUTE)
  get_filename_component(stem "${idl}" NAME_WE)
  set(include_root "${CMAKE_CURRENT_BINARY_DIR}/${ARG_TARGET}-gen")
  set(out "${include_root}")
  if(ARG_HEADER_PREFIX)
    set(out "${include_root}/${ARG_HEADER_PREFIX}")
  endif()
  set(include_flags "")
  foreach(dir IN LISTS ARG_INCLUDE_DIRS)
    get_filename_component(dir "${dir}" ABSOLUTE)
    list(APPEND include_flags -I "${dir}")
  endforeach()

  # Discover the output file names (they depend on the services the IDL declares).
  set(probe "${CMAKE_CURRENT_BINARY_DIR}/${ARG_TARGET}-probe")
  file(REMOVE_RECURSE "${probe}")
  file(MAKE_DIRECTORY "${probe}")
  execute_process(
    COMMAND ${THRIFT_COMPILER} ${include_flags} --gen cpp:no_skeleton -out "${probe}" "${idl}"
    RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "thrift failed on ${idl}:\n${err}")
  endif()
  file(GLOB generated RELATIVE "${probe}" "${probe}/*.cpp" "${probe}/*.h" "${probe}/*.tcc")
  file(REMOVE_RECURSE "${probe}")
  set(outputs "")
  set(sources "")
  foreach(f IN LISTS generated)
    list(APPEND outputs "${out}/${f}")
    if(f MATCHES "\\.cpp$")
      list(APPEND sources "${out}/${f}")
    endif()
  endforeach()

  # Included IDLs are dependencies too: editing one regenerates.
  set(deps "${idl}")
  foreach(dir IN LISTS ARG_INCLUDE_DIRS)
    file(GLOB_RECURSE more "${dir}/*.thrift")
    list(APPEND deps ${more})
  endforeach()

  add_custom_command(
    OUTPUT ${outputs}
    COMMAND ${CMAKE_COMMAND} -E make_directory "${out}"
    COMMAND ${THRIFT_COMPILER} ${include_flags} --gen cpp:no_skeleton -out "${out}" "${idl}"
    DEPENDS ${deps}
    COMMENT "thrift --gen cpp ${stem}.thrift"
    VERBATIM)
  add_library(${ARG_TARGET} STATIC ${sources})
  target_include_directories(${ARG_TARGET} PUBLIC "$<BUILD_INTERFACE:${include_root}>")
  target_link_libraries(${ARG_TARGET} PUBLIC Fulcrum::thrift)
  # Thrift's generated code trips -Wextra in places; it is not ours to fix.
  target_compile_options(${ARG_TARGET} PRIVATE -w)
endfunction()

# The stock compiler plus fulcrum-gen, at build time.
#
#   fulcrum_thrift_generate(TARGET calculator_thrift IDL calculator.thrift [INCLUDE_DIRS dir ...])
#
# makes a static library of `thrift -r --gen cpp` for the IDL and every IDL it includes, plus
# fulcrum-gen's <name>_fulcrum.{h,cpp} (balanced clients and server glue), linked to the
# runtime. Nothing runs at configure time: a syntax error in the IDL fails the build with the
# stock compiler's own file:line message. Editing the IDL, or any IDL it includes (found from
# `thrift -v`, written to a depfile), or a new fulcrum-gen regenerates. The stock compiler's C++
# files, whose names depend on the services the IDL declares, are compiled as one translation
# unit that includes them all, so adding a service needs no re-configure.
set(_FULCRUM_THRIFT_GEN_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/FulcrumThriftGen.cmake")

function(fulcrum_thrift_generate)
  cmake_parse_arguments(ARG "" "TARGET;IDL" "INCLUDE_DIRS" ${ARGN})
  if(NOT ARG_TARGET OR NOT ARG_IDL)
    message(FATAL_ERROR "fulcrum_thrift_generate: TARGET and IDL are required")
  endif()
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "fulcrum_thrift_generate: unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT TARGET Fulcrum::fulcrum-gen)
    message(FATAL_ERROR "fulcrum_thrift_generate: Fulcrum::fulcrum-gen is not defined")
  endif()
  get_target_property(gen Fulcrum::fulcrum-gen ALIASED_TARGET)
  if(NOT gen)
    set(gen Fulcrum::fulcrum-gen)
  endif()

  get_filename_component(idl "${ARG_IDL}" ABSOLUTE)
  get_filename_component(stem "${idl}" NAME_WLE)
  set(out "${CMAKE_CURRENT_BINARY_DIR}/${ARG_TARGET}-gen")
  set(dirs "")
  foreach(dir IN LISTS ARG_INCLUDE_DIRS)
    get_filename_component(dir "${dir}" ABSOLUTE)
    list(APPEND dirs "${dir}")
  endforeach()
  string(REPLACE ";" "|" dirs "${dirs}")

  set(header "${out}/${stem}_fulcrum.h")
  set(source "${out}/${stem}_fulcrum.cpp")
  set(stock "${out}/${ARG_TARGET}_stock.cc")
  add_custom_command(
    OUTPUT "${header}" "${source}" "${stock}"
    COMMAND ${CMAKE_COMMAND} "-DTHRIFT=${THRIFT_COMPILER}" "-DFULCRUM_GEN=$<TARGET_FILE:${gen}>"
            "-DIDL=${idl}" "-DOUT=${out}" "-DINCLUDE_DIRS=${dirs}" "-DSTOCK=${stock}"
            "-DDEPFILE=${out}/${ARG_TARGET}.d" "-DMAIN_OUTPUT=${header}"
            -P "${_FULCRUM_THRIFT_GEN_SCRIPT}"
    DEPENDS "${idl}" ${gen} "${_FULCRUM_THRIFT_GEN_SCRIPT}"
    DEPFILE "${out}/${ARG_TARGET}.d"
    COMMENT "thrift + fulcrum-gen ${stem}.thrift"
    VERBATIM)
  add_library(${ARG_TARGET} STATIC "${source}" "${stock}" "${header}")
  target_include_directories(${ARG_TARGET} PUBLIC "${out}")
  target_link_libraries(${ARG_TARGET} PUBLIC Fulcrum::runtime Fulcrum::gen_support Fulcrum::thrift)
  # The stock compiler's code trips -Wextra in places; it is not ours to fix. fulcrum-gen's
  # output compiles cleanly with warnings on (and as errors inside Fulcrum's own tree when
  # FULCRUM_WERROR is on).
  set_source_files_properties("${stock}" TARGET_DIRECTORY ${ARG_TARGET} PROPERTIES COMPILE_OPTIONS -w)
  set(warnings -Wall -Wextra)
  if(TARGET fulcrum_warnings AND FULCRUM_WERROR)
    list(APPEND warnings -Werror)
  endif()
  set_source_files_properties("${source}" TARGET_DIRECTORY ${ARG_TARGET} PROPERTIES COMPILE_OPTIONS "${warnings}")
endfunction()
