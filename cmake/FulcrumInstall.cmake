# `cmake --install` rules: the runtime library and headers, fulcrum-gen, and a package config
# so that an outside project can write
#
#   find_package(Fulcrum REQUIRED)
#   fulcrum_thrift_generate(TARGET calc_thrift IDL calc.thrift)
#   target_link_libraries(app PRIVATE calc_thrift)     # brings Fulcrum::runtime along
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(FULCRUM_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/Fulcrum)

set_target_properties(fulcrum_runtime PROPERTIES EXPORT_NAME runtime)
set_target_properties(fulcrum_gen_support PROPERTIES EXPORT_NAME gen_support)
set_target_properties(fulcrum_warnings PROPERTIES EXPORT_NAME warnings)
# fulcrum_warnings only travels as a link-only dependency of the static runtime; it carries
# no flags into a consumer's code.
install(TARGETS fulcrum_runtime fulcrum_gen_support fulcrum_warnings fulcrum-gen
        EXPORT FulcrumTargets
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/runtime/include/fulcrum
                  ${PROJECT_SOURCE_DIR}/codegen/include/fulcrum
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
install(EXPORT FulcrumTargets NAMESPACE Fulcrum:: DESTINATION ${FULCRUM_CMAKE_INSTALL_DIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/FulcrumConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/FulcrumConfig.cmake
                              INSTALL_DESTINATION ${FULCRUM_CMAKE_INSTALL_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/FulcrumConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/FulcrumConfig.cmake
              ${PROJECT_BINARY_DIR}/FulcrumConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/FulcrumDeps.cmake
              ${PROJECT_SOURCE_DIR}/cmake/FulcrumThrift.cmake
              ${PROJECT_SOURCE_DIR}/cmake/FulcrumThriftGen.cmake
        DESTINATION ${FULCRUM_CMAKE_INSTALL_DIR})
