/* SPDX-License-Identifier: MIT */
/* tsguard: `tsguard ctl [--control PATH] [-o text|json] COMMAND`, the client
 * of the control socket (control.h). */
#ifndef TSG_CTL_H
#define TSG_CTL_H

/* argv[0] is "ctl". Returns the exit status: 0 ok; 1 no tsguard answers;
 * 2 a usage error, a request refused, or `reload` rejected. */
int tsg_ctl_main(int argc, char **argv);

#endif
