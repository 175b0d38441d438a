/* SPDX-License-Identifier: MIT */
/* tsguard: command line (being written). */
#include <stdio.h>
int main(void)
{
	fprintf(stderr, "tsguard: not yet built\n");
	return 1;
}
