# The Helm chart's pods mode (tests/k8s/chart_pods_test.py) against the API server of the
# kesm_apiserver fixture, one test per check. Included from tests/CMakeLists.txt.
if(KESM_GO)
  find_program(KESM_PYTHON3 python3)
  set(chart_pods_test ${CMAKE_CURRENT_SOURCE_DIR}/k8s/chart_pods_test.py)
  foreach(check_and_name
      "lint|helm lint --strict and helm template of both modes, inProcess unchanged"
      "render|pods mode renders the controller, a StatefulSet and headless Service per mapping, least RBAC, and refuses bad names"
      "dry-run|every pods-mode object passes a strict server-side dry run"
      "install|helm upgrade keeps the replicas the controller set (lookup), new mappings start at their minimum, modes switch"
      "rbac|the controller's token can size its StatefulSets and list EndpointSlices, nothing else, the pollers' nothing")
    string(REPLACE "|" ";" parts "${check_and_name}")
    list(GET parts 0 check)
    list(GET parts 1 name)
    add_test(NAME "k8s: chart pods: ${name}"
      COMMAND ${KESM_PYTHON3} ${chart_pods_test} --env ${KESM_K8S_DIR}/run/env ${check})
    set_tests_properties("k8s: chart pods: ${name}" PROPERTIES
      FIXTURES_REQUIRED kesm_apiserver TIMEOUT 300)
  endforeach()
  add_test(NAME "k8s: chart pods: kesm validate accepts the rendered pods-mode config"
    COMMAND ${KESM_PYTHON3} ${chart_pods_test} --env ${KESM_K8S_DIR}/run/env
      --kesm $<TARGET_FILE:kesm> validate)
  set_tests_properties("k8s: chart pods: kesm validate accepts the rendered pods-mode config"
    PROPERTIES FIXTURES_REQUIRED kesm_apiserver TIMEOUT 300)
endif()
