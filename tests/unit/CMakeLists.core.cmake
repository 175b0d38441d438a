# Unit tests of the core stage (engine/core): the container and pod parser.
# Included by tests/unit/CMakeLists.txt.
tsg_unit_test(container tsg_core tsg_testhdr)
