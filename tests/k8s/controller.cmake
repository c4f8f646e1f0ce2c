# `kesm controller` against the real API server of the kesm_apiserver fixture, as a pod with
# the chart's least RBAC (tests/k8s/controller_test.py). Included from tests/CMakeLists.txt.
if(KESM_GO)
  find_program(KESM_PYTHON3 python3)
  set(controller_test ${CMAKE_CURRENT_SOURCE_DIR}/k8s/controller_test.py)
  add_test(NAME "k8s: kesm controller outside a pod exits 2 and says why"
    COMMAND ${KESM_PYTHON3} ${controller_test} --kesm $<TARGET_FILE:kesm> outside)
  foreach(case_and_name
      "seed|kesm controller starts from the replicas that run, and kill -9 and a restart keep them"
      "minimum|kesm controller writes a minimum above the running replicas once, SIGTERM leaves them"
      "waiting|kesm controller waits for a missing StatefulSet, writes nothing, then starts from it")
    string(REPLACE "|" ";" parts "${case_and_name}")
    list(GET parts 0 case)
    list(GET parts 1 name)
    add_test(NAME "k8s: ${name}"
      COMMAND ${KESM_PYTHON3} ${controller_test} --kesm $<TARGET_FILE:kesm>
        --k8s-dir ${KESM_K8S_DIR} ${case})
    set_tests_properties("k8s: ${name}" PROPERTIES FIXTURES_REQUIRED kesm_apiserver TIMEOUT 180)
  endforeach()
endif()
