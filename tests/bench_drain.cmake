# Included by tests/CMakeLists.txt (issue 17): bench/drain's pods mode (bench/drain_pods_check.sh).
# kesm_drain exists only with -DKESM_BENCH=ON.
if(TARGET kesm_drain)
  add_test(NAME "unit/bench: drain --mode pods refuses what pods mode cannot run"
    COMMAND ${PROJECT_SOURCE_DIR}/bench/drain_pods_check.sh options $<TARGET_FILE:kesm_drain>)
  add_test(NAME "integration: bench drain --mode pods, 4 kesm poller processes on the mock cluster deliver every record in order"
    COMMAND ${PROJECT_SOURCE_DIR}/bench/drain_pods_check.sh smoke $<TARGET_FILE:kesm_drain>
      $<TARGET_FILE:kesm>)
  set_tests_properties(
    "integration: bench drain --mode pods, 4 kesm poller processes on the mock cluster deliver every record in order"
    PROPERTIES TIMEOUT 300)
endif()
