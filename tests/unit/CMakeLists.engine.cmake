# Engine unit tests (lead's area).
add_executable(test_engine ${CMAKE_CURRENT_LIST_DIR}/test_engine.c)
target_link_libraries(test_engine PRIVATE tsg_eval tsg_testutil PkgConfig::CMOCKA)
add_test(NAME unit.engine COMMAND test_engine)

add_executable(test_rate ${CMAKE_CURRENT_LIST_DIR}/test_rate.c)
target_link_libraries(test_rate PRIVATE tsg_eval tsg_testutil PkgConfig::CMOCKA)
add_test(NAME unit.rate COMMAND test_rate)

add_executable(test_eventio ${CMAKE_CURRENT_LIST_DIR}/test_eventio.c)
target_link_libraries(test_eventio PRIVATE tsg_events tsg_testhdr PkgConfig::CMOCKA)
add_test(NAME unit.eventio COMMAND test_eventio)

add_executable(test_sockpack ${CMAKE_CURRENT_LIST_DIR}/test_sockpack.c)
target_link_libraries(test_sockpack PRIVATE tsg_eval tsg_testhdr PkgConfig::CMOCKA)
add_test(NAME unit.sockpack COMMAND test_sockpack)
