# Included by tests/CMakeLists.txt (issue 16): the live line that `kesm top` and `kesm run
# --live` share (unit), and Prometheus' linter on a live scrape.

# Pure tests of app/live_line.h; kesm_app for app/status.h, whose documents they read back.
kesm_unit_tests(app kesm_app)
