# The Grafana dashboard deploy/grafana/kesm.json, validated without a Grafana (none can be
# installed here): tests/grafana/validate.sh builds a strict validator on the Grafana Foundation
# SDK (Go module proxy; cached under .cache/grafana, rebuilt only when its sources change) and
# tests/grafana/dashboard_test.py runs it on the dashboard and on broken copies of it.
# Included from tests/CMakeLists.txt.
find_program(KESM_GO go)
find_program(KESM_PYTHON3 python3)
find_program(KESM_PROMTOOL promtool)
set(grafana_dir ${CMAKE_CURRENT_LIST_DIR})
if(KESM_GO AND KESM_PYTHON3)
  add_test(NAME "grafana: build the dashboard validator (Grafana Foundation SDK v0.0.22)"
    COMMAND ${grafana_dir}/validate.sh build)
  set_tests_properties("grafana: build the dashboard validator (Grafana Foundation SDK v0.0.22)"
    PROPERTIES FIXTURES_SETUP kesm_grafana_validator TIMEOUT 900)
  foreach(check_and_name
      "valid|dashboard decodes strictly with the SDK types, validates and passes every check"
      "unknown-field|the validator rejects an unknown field at every level of the dashboard"
      "wrong-type|the validator rejects a value of the wrong type at every level"
      "checks|the validator rejects a hard-coded uid, a misspelt metric, overlapping panels and more")
    string(REPLACE "|" ";" parts "${check_and_name}")
    list(GET parts 0 check)
    list(GET parts 1 name)
    add_test(NAME "grafana: ${name}"
      COMMAND ${KESM_PYTHON3} ${grafana_dir}/dashboard_test.py ${check})
    set_tests_properties("grafana: ${name}" PROPERTIES
      FIXTURES_REQUIRED kesm_grafana_validator TIMEOUT 300)
  endforeach()
else()
  add_test(NAME "grafana: SKIPPED - go or python3 not found, the dashboard was not validated"
    COMMAND sh -c "echo 'grafana SKIPPED: go and python3 are needed' >&2; exit 77")
  set_tests_properties("grafana: SKIPPED - go or python3 not found, the dashboard was not validated"
    PROPERTIES SKIP_RETURN_CODE 77)
endif()
if(KESM_PYTHON3 AND KESM_PROMTOOL)
  add_test(NAME "grafana: every expr of the dashboard parses as PromQL (promtool)"
    COMMAND ${KESM_PYTHON3} ${grafana_dir}/dashboard_test.py promql)
  set_tests_properties("grafana: every expr of the dashboard parses as PromQL (promtool)"
    PROPERTIES TIMEOUT 120)
else()
  add_test(NAME "grafana: SKIPPED - promtool not found, the dashboard's PromQL was not parsed"
    COMMAND sh -c "echo 'grafana SKIPPED: promtool (Debian prometheus) is needed' >&2; exit 77")
  set_tests_properties("grafana: SKIPPED - promtool not found, the dashboard's PromQL was not parsed"
    PROPERTIES SKIP_RETURN_CODE 77)
endif()
