# HTTPS to the function (tests/https/https_test.cc): kesm against Python's ssl + http.server
# and the mock cluster. An executable of its own, not a part of kesm_integration_tests: it
# builds in a fraction of that target's time and runs beside it under the same ctest prefix.
add_executable(kesm_https_tests ${CMAKE_CURRENT_LIST_DIR}/https_test.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/integration/harness.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/integration/config_yaml.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/unit/net/tls_peer.cc)
kesm_target_options(kesm_https_tests)
target_link_libraries(kesm_https_tests PRIVATE Catch2::Catch2WithMain kesm_app PkgConfig::RDKAFKA)
target_compile_definitions(kesm_https_tests PRIVATE
  KESM_BINARY="$<TARGET_FILE:kesm>" KESM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(kesm_https_tests kesm)
catch_discover_tests(kesm_https_tests TEST_PREFIX "integration: " EXTRA_ARGS -w NoTests
  PROPERTIES TIMEOUT 300)
