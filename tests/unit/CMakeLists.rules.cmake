# Unit tests of the rule loader and the user-space matchers
# (engine/load/*.c). Included by
# tests/unit/CMakeLists.txt.
add_executable(test_rules ${CMAKE_CURRENT_LIST_DIR}/test_rules.c)
target_link_libraries(test_rules PRIVATE tsg_load tsg_testutil PkgConfig::CMOCKA)
target_compile_definitions(test_rules PRIVATE
  RULES_CASES="${CMAKE_CURRENT_LIST_DIR}/rules_cases")
add_test(NAME unit.rules COMMAND test_rules)

add_executable(test_match ${CMAKE_CURRENT_LIST_DIR}/test_match.c)
target_link_libraries(test_match PRIVATE tsg_load tsg_testutil PkgConfig::CMOCKA)
add_test(NAME unit.match COMMAND test_match)
