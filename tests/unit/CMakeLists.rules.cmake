# Unit tests of the rule loader and the user-space matchers
# (engine/load/*.c). Included by
# tests/unit/CMakeLists.txt.
tsg_unit_test(rules tsg_load tsg_testutil)
target_compile_definitions(test_rules PRIVATE
  RULES_CASES="${CMAKE_CURRENT_LIST_DIR}/rules_cases")

tsg_unit_test(match tsg_load tsg_testutil)
