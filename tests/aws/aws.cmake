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

# awsLambda against moto's server (tests/aws/moto.sh: a pinned moto[server] venv under
# .cache/moto, started on a free loopback port with signature checking on, provisioned by
# moto_lambda.py). The scenarios run kesm in process against the mock Kafka cluster.
set(aws_moto_sh ${CMAKE_CURRENT_LIST_DIR}/moto.sh)
set(aws_moto_dir ${PROJECT_SOURCE_DIR}/.cache/moto)
add_executable(kesm_moto_tests ${CMAKE_CURRENT_LIST_DIR}/lambda_moto_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/../integration/harness.cc
  ${CMAKE_CURRENT_LIST_DIR}/../integration/config_yaml.cc)
kesm_target_options(kesm_moto_tests)
target_include_directories(kesm_moto_tests PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../integration)
target_link_libraries(kesm_moto_tests PRIVATE Catch2::Catch2WithMain kesm_app PkgConfig::RDKAFKA
  Boost::json)
target_compile_definitions(kesm_moto_tests PRIVATE KESM_MOTO_DIR="${aws_moto_dir}"
  KESM_BINARY="$<TARGET_FILE:kesm>" KESM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
if(KESM_PYTHON3)
  add_test(NAME "aws: install moto[server] 5.2.5 into .cache/moto"
    COMMAND ${aws_moto_sh} setup --dir ${aws_moto_dir})
  set_tests_properties("aws: install moto[server] 5.2.5 into .cache/moto" PROPERTIES
    FIXTURES_SETUP kesm_moto_venv TIMEOUT 900)
  add_test(NAME "aws: start and provision moto_server" COMMAND ${aws_moto_sh} start --dir ${aws_moto_dir})
  set_tests_properties("aws: start and provision moto_server" PROPERTIES
    FIXTURES_SETUP kesm_moto FIXTURES_REQUIRED kesm_moto_venv TIMEOUT 180 RESOURCE_LOCK kesm_moto)
  add_test(NAME "aws: stop moto_server" COMMAND ${aws_moto_sh} stop --dir ${aws_moto_dir})
  set_tests_properties("aws: stop moto_server" PROPERTIES FIXTURES_CLEANUP kesm_moto
    RESOURCE_LOCK kesm_moto)
  catch_discover_tests(kesm_moto_tests TEST_PREFIX "aws: moto: " EXTRA_ARGS -w NoTests
    PROPERTIES FIXTURES_REQUIRED kesm_moto RESOURCE_LOCK kesm_moto TIMEOUT 180)
else()
  add_test(NAME "aws: SKIPPED - python3 not found, awsLambda was not tested against moto"
    COMMAND sh -c "echo 'aws SKIPPED: python3 is needed' >&2; exit 77")
  set_tests_properties("aws: SKIPPED - python3 not found, awsLambda was not tested against moto"
    PROPERTIES SKIP_RETURN_CODE 77)
endif()
