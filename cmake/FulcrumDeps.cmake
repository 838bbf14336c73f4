# Finds Fulcrum's dependencies, all from Debian's packages (scripts/setup.sh installs them).
find_package(PkgConfig REQUIRED)
pkg_check_modules(THRIFT REQUIRED IMPORTED_TARGET thrift>=0.17)
pkg_check_modules(THRIFT_NB REQUIRED IMPORTED_TARGET thrift-nb>=0.17)
pkg_check_modules(LIBEVENT REQUIRED IMPORTED_TARGET libevent)
find_package(Threads REQUIRED)
find_package(gflags REQUIRED)
find_package(glog REQUIRED)
find_package(Boost 1.74 REQUIRED)
# Metrics: the registry of metrics and the Prometheus text format (Debian prometheus-cpp-dev).
find_package(prometheus-cpp CONFIG REQUIRED)
find_program(THRIFT_COMPILER thrift REQUIRED)

if(NOT TARGET Fulcrum::thrift)
  add_library(Fulcrum::thrift INTERFACE IMPORTED)
  target_link_libraries(Fulcrum::thrift INTERFACE PkgConfig::THRIFT Threads::Threads)
  add_library(Fulcrum::thriftnb INTERFACE IMPORTED)
  target_link_libraries(Fulcrum::thriftnb INTERFACE PkgConfig::THRIFT_NB PkgConfig::LIBEVENT
                                                    Fulcrum::thrift)
endif()
