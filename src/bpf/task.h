/* SPDX-License-Identifier: GPL-2.0 */
/* What the tools' records share about a task, defined once for every tool's header. */
#ifndef __CORETRACE_TASK_H
#define __CORETRACE_TASK_H

/* The kernel's comm size (include/linux/sched.h), NUL included: 15 bytes of name. */
#define TASK_COMM_LEN 16

#endif /* __CORETRACE_TASK_H */
