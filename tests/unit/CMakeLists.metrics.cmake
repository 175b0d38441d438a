# Unit tests of the metrics endpoint (engine/metrics/metrics.c): exposition text,
# `promtool check metrics`, HTTP on loopback. Included by
# tests/unit/CMakeLists.txt; needs libmicrohttpd (tsg_metrics) and libcurl.
if(TARGET tsg_metrics)
  find_program(PROMTOOL promtool)
  tsg_unit_test(metrics tsg_metrics PkgConfig::CURL)
  if(PROMTOOL)
    target_compile_definitions(test_metrics PRIVATE PROMTOOL="${PROMTOOL}")
  endif()
  set_tests_properties(unit.metrics PROPERTIES TIMEOUT 60)
endif()
