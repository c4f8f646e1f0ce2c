# The cloudEvents protocol against real CloudEvents peers (tests/integration/cloudevents_test.cc,
# tagged [cloudevents]). Included from tests/CMakeLists.txt after kesm_integration_tests.
# tests/cloudevents/peers.sh builds the CloudEvents Go SDK sink and installs Google's Functions
# Framework into .cache/cloudevents (a ctest fixture); without go or python3 the tests show as
# skipped, never silently pass.
set(KESM_CE_DIR ${PROJECT_SOURCE_DIR}/.cache/cloudevents)
target_compile_definitions(kesm_integration_tests PRIVATE KESM_CE_DIR="${KESM_CE_DIR}")
# TestPki (the openssl command line's test CA and certificates) for the https case.
target_sources(kesm_integration_tests PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../unit/net/tls_peer.cc)
find_program(KESM_GO go)
find_program(KESM_PYTHON3 python3)
if(KESM_GO AND KESM_PYTHON3)
  add_test(NAME "integration: build the CloudEvents peers (Go SDK sink, Functions Framework)"
    COMMAND ${CMAKE_CURRENT_LIST_DIR}/peers.sh setup --dir ${KESM_CE_DIR})
  set_tests_properties("integration: build the CloudEvents peers (Go SDK sink, Functions Framework)"
    PROPERTIES FIXTURES_SETUP kesm_ce_peers TIMEOUT 900)
  catch_discover_tests(kesm_integration_tests TEST_PREFIX "integration: " TEST_SPEC "[cloudevents]"
    EXTRA_ARGS -w NoTests TEST_LIST kesm_ce_tests
    PROPERTIES FIXTURES_REQUIRED kesm_ce_peers TIMEOUT 300)
else()
  add_test(NAME "integration: SKIPPED - go or python3 not found, no CloudEvents peer tests ran"
    COMMAND sh -c "echo 'CloudEvents peer tests SKIPPED: go and python3 are needed' >&2; exit 77")
  set_tests_properties("integration: SKIPPED - go or python3 not found, no CloudEvents peer tests ran"
    PROPERTIES SKIP_RETURN_CODE 77)
endif()
