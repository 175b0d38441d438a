# Unit tests of the plan compiler (engine/plan/plan.c). Included by
# tests/unit/CMakeLists.txt.
if(TARGET PkgConfig::CMOCKA)
  tsg_unit_test(plan tsg_plan tsg_testutil)
  set_tests_properties(unit.plan PROPERTIES TIMEOUT 120)
endif()
