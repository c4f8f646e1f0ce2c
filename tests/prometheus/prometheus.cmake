# The Prometheus rules deploy/prometheus/rules.yaml, checked and unit-tested with Debian's
# promtool (scripts/install-deps.sh installs the `prometheus` package). Never skipped: without
# promtool these tests fail, saying so.
find_program(KESM_PROMTOOL promtool)
find_program(KESM_PYTHON3 python3)
set(kesm_rules ${PROJECT_SOURCE_DIR}/deploy/prometheus/rules.yaml)
set(kesm_rules_test ${CMAKE_CURRENT_LIST_DIR}/rules_test.yaml)
if(KESM_PROMTOOL)
  add_test(NAME "prometheus: rules check" COMMAND ${KESM_PROMTOOL} check rules ${kesm_rules})
  add_test(NAME "prometheus: rules unit tests"
    COMMAND ${KESM_PROMTOOL} test rules ${kesm_rules_test})
  # What promtool does not check: the dashboard's recording rules, each alert's labels,
  # annotations and runbook section in docs/operations.md, the PromQL of that page.
  add_test(NAME "prometheus: rules lint, runbooks and the PromQL of docs/operations.md"
    COMMAND ${KESM_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/rules_lint.py ${KESM_PROMTOOL})
  # Every alert's for: and threshold changed in turn: the unit tests must catch each change.
  add_test(NAME "prometheus: rules unit tests catch a changed threshold or for of every alert"
    COMMAND ${KESM_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/rules_mutants.py ${KESM_PROMTOOL})
  set_tests_properties("prometheus: rules check" "prometheus: rules unit tests"
    "prometheus: rules lint, runbooks and the PromQL of docs/operations.md"
    "prometheus: rules unit tests catch a changed threshold or for of every alert"
    PROPERTIES TIMEOUT 300)
else()
  message(WARNING "promtool not found: the prometheus: tests will FAIL. "
    "Run scripts/install-deps.sh (Debian package prometheus) and reconfigure.")
  foreach(name "rules check" "rules unit tests")
    add_test(NAME "prometheus: ${name}" COMMAND sh -c
      "echo 'promtool not found: install the Debian package prometheus (scripts/install-deps.sh) and reconfigure' >&2; exit 1")
  endforeach()
endif()
