# `cmake --install` rules: every deliverable, and a package config with components, so that an
# outside project needs nothing but the install prefix:
#
#   find_package(Fulcrum 0.1 REQUIRED COMPONENTS fulcrum etcd)
#   fulcrum_thrift_generate(TARGET calc_thrift IDL calc.thrift)
#   target_link_libraries(app PRIVATE calc_thrift Fulcrum::fulcrum)   # calc_thrift brings
#                                                                     # Fulcrum::runtime along
#
# Installed:
#   bin/      fulcrum-gen, fulcrum-registry, fulcrumctl
#   lib/      libfulcrum_runtime.a, libfulcrum_registry_thrift.a (the registry IDL),
#             libfulcrum_discovery_fulcrum.a, libfulcrum_discovery_etcd.a
#   include/  fulcrum/*.h (runtime, generated-code support), fulcrum/discovery/*.h (discovery),
#             fulcrum/idl/*.h (the registry IDL's generated headers): public headers only
#   lib/cmake/Fulcrum/  FulcrumConfig.cmake, FulcrumConfigVersion.cmake, one targets file per
#             component, FulcrumDeps.cmake, FulcrumThrift.cmake (fulcrum_thrift_generate)
#
# Components: runtime (always: Fulcrum::runtime, Fulcrum::gen_support, Fulcrum::registry_thrift,
# Fulcrum::fulcrum-gen), fulcrum (Fulcrum::fulcrum: fulcrum://), etcd (Fulcrum::etcd: etcd://),
# registry (Fulcrum::fulcrum-registry, Fulcrum::fulcrumctl as imported executables).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(FULCRUM_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/Fulcrum)
set(fulcrum_install_dirs
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set_target_properties(fulcrum_runtime PROPERTIES EXPORT_NAME runtime)
set_target_properties(fulcrum_gen_support PROPERTIES EXPORT_NAME gen_support)
set_target_properties(fulcrum_registry_thrift PROPERTIES EXPORT_NAME registry_thrift)

# The runtime component.
install(TARGETS fulcrum_runtime fulcrum_gen_support fulcrum_registry_thrift fulcrum-gen
        EXPORT FulcrumTargets ${fulcrum_install_dirs})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/runtime/include/fulcrum
                  ${PROJECT_SOURCE_DIR}/codegen/include/fulcrum
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
install(DIRECTORY ${FULCRUM_REGISTRY_THRIFT_HEADERS}/
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/fulcrum/idl
        FILES_MATCHING PATTERN "*.h" PATTERN "*.tcc")
install(EXPORT FulcrumTargets NAMESPACE Fulcrum:: DESTINATION ${FULCRUM_CMAKE_INSTALL_DIR})

# One component per discovery library.
foreach(library fulcrum etcd)
  string(SUBSTRING ${library} 0 1 first)
  string(TOUPPER ${first} first)
  string(SUBSTRING ${library} 1 -1 rest)
  install(TARGETS fulcrum_discovery_${library} EXPORT Fulcrum${first}${rest}Targets
          ${fulcrum_install_dirs})
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/runtime/discovery/${library}/include/fulcrum
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
  install(EXPORT Fulcrum${first}${rest}Targets NAMESPACE Fulcrum::
          DESTINATION ${FULCRUM_CMAKE_INSTALL_DIR})
endforeach()

# The registry daemon and its admin command line.
install(TARGETS fulcrum-registry fulcrumctl EXPORT FulcrumRegistryTargets ${fulcrum_install_dirs})
install(EXPORT FulcrumRegistryTargets NAMESPACE Fulcrum:: DESTINATION ${FULCRUM_CMAKE_INSTALL_DIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/FulcrumConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/FulcrumConfig.cmake
                              INSTALL_DESTINATION ${FULCRUM_CMAKE_INSTALL_DIR})
# 0.x: a minor version may break the API, so only the same minor version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/FulcrumConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/FulcrumConfig.cmake
              ${PROJECT_BINARY_DIR}/FulcrumConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/FulcrumDeps.cmake
              ${PROJECT_SOURCE_DIR}/cmake/FulcrumThrift.cmake
              ${PROJECT_SOURCE_DIR}/cmake/FulcrumThriftGen.cmake
        DESTINATION ${FULCRUM_CMAKE_INSTALL_DIR})
