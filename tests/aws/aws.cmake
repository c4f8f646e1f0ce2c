# The SigV4 signer's tests (aws/). Included from tests/CMakeLists.txt.
#  - unit/aws: tests/unit/aws/*.cc, pure: the AWS test suite's vectors and kesm's own cases.
#  - aws: the signer against botocore itself: tests/aws/botocore.sh installs a pinned botocore
#    into a venv under .cache/botocore (PyPI), signs tests/aws/sigv4_cases.json with
#    botocore.auth.SigV4Auth, kesm_sigv4_sign signs the same, and the outputs must be equal.
kesm_unit_tests(aws kesm_aws Boost::json)
target_compile_definitions(kesm_unit_aws PRIVATE
  KESM_SIGV4_VECTORS_DIR="${CMAKE_CURRENT_LIST_DIR}/../unit/sigv4_vectors")

add_executable(kesm_sigv4_sign ${CMAKE_CURRENT_LIST_DIR}/sigv4_sign.cc)
kesm_target_options(kesm_sigv4_sign)
target_link_libraries(kesm_sigv4_sign PRIVATE kesm_aws Boost::json)

find_program(KESM_PYTHON3 python3)
set(aws_sh ${CMAKE_CURRENT_LIST_DIR}/botocore.sh)
set(aws_botocore_dir ${PROJECT_SOURCE_DIR}/.cache/botocore)
if(KESM_PYTHON3)
  add_test(NAME "aws: install botocore 1.44.5 into .cache/botocore"
    COMMAND ${aws_sh} setup --dir ${aws_botocore_dir})
  set_tests_properties("aws: install botocore 1.44.5 into .cache/botocore" PROPERTIES
    FIXTURES_SETUP kesm_botocore TIMEOUT 600)
  add_test(NAME "aws: sigv4 matches botocore 1.44.5 byte for byte (Lambda ARN path, token, body, unicode path)"
    COMMAND ${aws_sh} compare --dir ${aws_botocore_dir} --signer $<TARGET_FILE:kesm_sigv4_sign>)
  set_tests_properties("aws: sigv4 matches botocore 1.44.5 byte for byte (Lambda ARN path, token, body, unicode path)"
    PROPERTIES FIXTURES_REQUIRED kesm_botocore TIMEOUT 120)
else()
  add_test(NAME "aws: SKIPPED - python3 not found, the signer was not compared with botocore"
    COMMAND sh -c "echo 'aws SKIPPED: python3 is needed' >&2; exit 77")
  set_tests_properties("aws: SKIPPED - python3 not found, the signer was not compared with botocore"
    PROPERTIES SKIP_RETURN_CODE 77)
endif()
