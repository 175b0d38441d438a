# Unit tests of the metrics endpoint (engine/metrics/metrics.c): exposition text,
# `promtool check metrics`, HTTP on loopback. Included by
# tests/unit/CMakeLists.txt; needs libmicrohttpd (tsg_metrics) and libcurl.
if(TARGET tsg_metrics)
  find_program(PROMTOOL promtool)
  add_executable(test_metrics ${CMAKE_CURRENT_LIST_DIR}/test_metrics.c)
  target_link_libraries(test_metrics PRIVATE tsg_metrics PkgConfig::CURL PkgConfig::CMOCKA)
  if(PROMTOOL)
    target_compile_definitions(test_metrics PRIVATE PROMTOOL="${PROMTOOL}")
  endif()
  add_test(NAME unit.metrics COMMAND test_metrics)
  set_tests_properties(unit.metrics PROPERTIES TIMEOUT 60)
endif()
