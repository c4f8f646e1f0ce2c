# Writes OUT (a header defining KESM_REVISION_STRING) with the checkout's revision: KESM_REVISION
# when given, else `git rev-parse --short=12 HEAD`, else "unknown". The file is rewritten only
# when the revision changed, so a build recompiles the one file that includes it.
if(NOT REVISION)
  execute_process(COMMAND git rev-parse --short=12 HEAD WORKING_DIRECTORY ${SOURCE_DIR}
    OUTPUT_VARIABLE REVISION OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR NOT REVISION)
    set(REVISION "unknown")
  endif()
endif()
set(content "#pragma once\n#define KESM_REVISION_STRING \"${REVISION}\"\n")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT old STREQUAL content)
  file(WRITE ${OUT} "${content}")
endif()
