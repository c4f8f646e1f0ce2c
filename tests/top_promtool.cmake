# Included by tests/CMakeLists.txt (issue 16): the live line that `kesm top` and `kesm run
# --live` share (unit), and Prometheus' linter on a live scrape.

# Pure tests of app/live_line.h; kesm_app for app/status.h, whose documents they read back.
kesm_unit_tests(app kesm_app)

# `promtool check metrics` (Debian's prometheus package, from scripts/install-deps.sh) on a
# scrape of kesm after a burst on the mock cluster. Never skipped: without promtool it fails
# and says how to get it.
find_program(KESM_PROMTOOL promtool)
set(promtool "${KESM_PROMTOOL}")
if(NOT KESM_PROMTOOL)
  set(promtool "") # the test says what is missing
endif()
add_executable(kesm_promtool_tests ${CMAKE_CURRENT_SOURCE_DIR}/promtool/live_scrape_test.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/integration/harness.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/integration/config_yaml.cc)
kesm_target_options(kesm_promtool_tests)
target_include_directories(kesm_promtool_tests PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/integration)
target_link_libraries(kesm_promtool_tests PRIVATE Catch2::Catch2WithMain kesm_app
  PkgConfig::RDKAFKA)
target_compile_definitions(kesm_promtool_tests PRIVATE KESM_BINARY="$<TARGET_FILE:kesm>")
# One test, named as the issue's plan names it (discovery would drop the space after ':').
set(name "live scrape passes promtool check metrics")
add_test(NAME "prometheus: ${name}" COMMAND kesm_promtool_tests "${name}" -w NoTests)
set_tests_properties("prometheus: ${name}" PROPERTIES TIMEOUT 300
  ENVIRONMENT "KESM_PROMTOOL=${promtool}")
