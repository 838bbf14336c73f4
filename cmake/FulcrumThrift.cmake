# Build-time Thrift code generation.
#
#   fulcrum_thrift_cpp(TARGET echo_thrift IDL path/to/echo.thrift [INCLUDE_DIRS dir ...])
#
# runs the stock compiler (`thrift --gen cpp`) at build time into the build tree and makes a
# static library of the output. Editing the IDL regenerates. The names of the generated files
# are found by running the compiler once at configure time into a scratch folder, so every IDL
# the stock compiler accepts works, whatever it declares.
function(fulcrum_thrift_cpp)
  cmake_parse_arguments(ARG "" "TARGET;IDL" "INCLUDE_DIRS" ${ARGN})
  if(NOT ARG_TARGET OR NOT ARG_IDL)
    message(FATAL_ERROR "fulcrum_thrift_cpp: TARGET and IDL are required")
  endif()
  get_filename_component(idl "${ARG_IDL}" ABSOLUTE)
  get_filename_component(stem "${idl}" NAME_WE)
  set(out "${CMAKE_CURRENT_BINARY_DIR}/${ARG_TARGET}-gen")
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
  target_include_directories(${ARG_TARGET} PUBLIC "${out}")
  target_link_libraries(${ARG_TARGET} PUBLIC Fulcrum::thrift)
  # Thrift's generated code trips -Wextra in places; it is not ours to fix.
  target_compile_options(${ARG_TARGET} PRIVATE -w)
endfunction()
