# The status page (issue 16): /status/history's JSON in the integration tests, and the page in
# a real browser (tests/browser/): Debian's chromium, headless, driven over the DevTools
# protocol on a pipe. Included from tests/CMakeLists.txt.
if(TARGET kesm_integration_tests)
  target_link_libraries(kesm_integration_tests PRIVATE Boost::json)
endif()

find_program(KESM_CHROMIUM chromium)
find_program(KESM_PYTHON3_BROWSER python3)
set(browser_dir ${CMAKE_CURRENT_SOURCE_DIR}/browser)
if(KESM_CHROMIUM AND KESM_PYTHON3_BROWSER)
  add_test(NAME "browser: status page shows /status"
    COMMAND ${KESM_PYTHON3_BROWSER} ${browser_dir}/status_page_test.py
      --kesm $<TARGET_FILE:kesm> --chromium ${KESM_CHROMIUM}
      --screenshot ${CMAKE_CURRENT_BINARY_DIR}/status-page.png)
  set_tests_properties("browser: status page shows /status" PROPERTIES TIMEOUT 300)
  add_test(NAME "browser: shoot.sh saves a PNG of a page at the size asked"
    COMMAND ${KESM_PYTHON3_BROWSER} ${browser_dir}/status_page_test.py
      --chromium ${KESM_CHROMIUM} --check-shoot ${browser_dir}/shoot.sh)
  set_tests_properties("browser: shoot.sh saves a PNG of a page at the size asked" PROPERTIES
    TIMEOUT 120)
else()
  message(WARNING "chromium or python3 not found: the browser tests are SKIPPED. Run "
    "scripts/install-deps.sh and reconfigure.")
  add_test(NAME "browser: SKIPPED - chromium not found, the status page was not tested"
    COMMAND sh -c "echo 'browser SKIPPED: chromium is needed' >&2; exit 77")
  set_tests_properties("browser: SKIPPED - chromium not found, the status page was not tested"
    PROPERTIES SKIP_RETURN_CODE 77)
endif()
