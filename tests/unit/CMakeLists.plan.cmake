# Unit tests of the plan compiler (engine/plan/plan.c). Included by
# tests/unit/CMakeLists.txt.
if(TARGET PkgConfig::CMOCKA)
  add_executable(test_plan ${CMAKE_CURRENT_LIST_DIR}/test_plan.c)
  target_link_libraries(test_plan PRIVATE tsg_plan tsg_testutil PkgConfig::CMOCKA)
  add_test(NAME unit.plan COMMAND test_plan)
  set_tests_properties(unit.plan PROPERTIES TIMEOUT 120)
endif()
