/* SPDX-License-Identifier: MIT */
/*
 * The main() of a cmocka test program without group setup or teardown:
 * TSG_TEST_MAIN(tests) runs the array of tests `tests`. Include it after
 * <cmocka.h>.
 */
#ifndef TSG_TEST_MAIN_H
#define TSG_TEST_MAIN_H

#define TSG_TEST_MAIN(group)                                                                       \
	int main(void)                                                                             \
	{                                                                                          \
		return cmocka_run_group_tests(group, NULL, NULL);                                  \
	}

#endif
