# Unit tests of the core stage (engine/core): the container and pod parser.
# Included by tests/unit/CMakeLists.txt.
add_executable(test_container ${CMAKE_CURRENT_LIST_DIR}/test_container.c)
target_link_libraries(test_container PRIVATE tsg_core tsg_testhdr PkgConfig::CMOCKA)
add_test(NAME unit.container COMMAND test_container)
