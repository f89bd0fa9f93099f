# Fuzz targets of the daemon side (sourced by tools/fuzz).
sources[keystone_response]="tests/fuzz/keystone_response_fuzz.cc daemon/barbican/keystone_protocol.cc engine/status.cc engine/secure_memory.cc"
libs[keystone_response]="-lsodium"
sources[bus_options]="tests/fuzz/bus_options_fuzz.cc daemon/bus/options.cc daemon/core/log.cc engine/status.cc engine/secure_memory.cc engine/uuid.cc"
libs[bus_options]="-lsodium $(pkg-config --libs sdbus-c++)"
