# What the controller learns from poller pods (k8s/pod_status_scraper.h) against the real API
# server of the kesm_apiserver fixture and real HTTP servers (tests/k8s/pod_status_test.cc).
# Included from tests/CMakeLists.txt.
if(KESM_GO)
  add_executable(kesm_k8s_pod_status_tests ${CMAKE_CURRENT_SOURCE_DIR}/k8s/pod_status_test.cc)
  kesm_target_options(kesm_k8s_pod_status_tests)
  target_link_libraries(kesm_k8s_pod_status_tests PRIVATE Catch2::Catch2WithMain kesm_k8s_pool
    Boost::json)
  catch_discover_tests(kesm_k8s_pod_status_tests TEST_PREFIX "k8s: " EXTRA_ARGS -w NoTests
    PROPERTIES FIXTURES_REQUIRED kesm_apiserver TIMEOUT 120
    ENVIRONMENT "KESM_K8S_DIR=${KESM_K8S_DIR}")
endif()
