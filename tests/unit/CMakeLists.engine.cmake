# Engine unit tests (lead's area).
tsg_unit_test(engine tsg_eval tsg_testutil)
tsg_unit_test(rate tsg_eval tsg_testutil)
tsg_unit_test(eventio tsg_events tsg_testhdr)
tsg_unit_test(sockpack tsg_eval tsg_testhdr)
