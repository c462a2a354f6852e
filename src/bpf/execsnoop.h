/* SPDX-License-Identifier: GPL-2.0 */
/* The record execsnoop's BPF side sends to user space. */
#ifndef __EXECSNOOP_H
#define __EXECSNOOP_H

#include "task.h"
#define ARG_MAX_READ 256       /* longest single argument read; longer ones are cut */
#define ARGS_BUF 4096          /* all arguments of one exec, NUL-separated */
#define LAST_ARG_OFFSET (ARGS_BUF - ARG_MAX_READ)
/* Longest argument area read at once after a successful exec (it follows the path). */
#define AREA_MAX_READ (ARGS_BUF - 2 * ARG_MAX_READ)
#define TOTAL_MAX_ARGS 60      /* upper bound of --max-args */
/* An exec by descriptor: its path as names of EXE_NAME bytes, EXE_DEPTH * EXE_NAME == ARG_MAX_READ */
#define EXE_DEPTH 8
#define EXE_NAME 32
#define EXE_MOUNTS 4           /* mount crossings followed on the way up */
#define DEFAULT_MAX_ARGS 20

/* Slots of the `losses` counters (slot 0, the ring buffer, is common.bpf.h's). */
#define LOSS_INFLIGHT_FULL 1 /* an exec not staged: the in-flight table was full */
#define LOSS_LIVE_FULL 2     /* -d: a process not followed: the live-process table was full */
#define LOSS_ARGS_UNREADABLE 3 /* an exec reported without its arguments: they could not be read */

/* exec_event.flags */
#define EXEC_ARGS_TRUNCATED 1  /* more arguments, or longer ones, than were read */
#define EXEC_EXITED 2          /* -d mode: sent at exit; duration_ns and exit_code are set */
#define EXEC_ARGV0 4           /* argv[0] follows the path (read from the new program's memory) */
#define EXEC_ARGS_UNREADABLE 8 /* the arguments could not be read: the row says so */
#define EXEC_PATH_SLOTS 16     /* the path is EXE_DEPTH names, leaf first (exec by descriptor) */
#define EXEC_PATH_HEAD_CUT 32  /* EXEC_PATH_SLOTS: the path has more names than were read */

/*
 * Header of every record; args_size bytes of arguments (path first, then argv[1..], or with
 * EXEC_ARGV0 argv[0..]; each NUL-terminated, the last one possibly cut) follow it directly in
 * the ring buffer.
 */
struct exec_event {
	__u64 ts;          /* CLOCK_MONOTONIC ns: the exec, or the exit in -d mode */
	__u64 duration_ns; /* -d mode: time from exec to exit */
	__u64 cgroup_id;   /* the caller's cgroup (common.bpf.h: task_cgroup_id) */
	__u32 pid;
	__u32 ppid;
	__u32 uid;
	__s32 retval;      /* exec's return: 0 or -errno */
	__s32 exit_code;   /* -d mode: wait status (code << 8 | signal) */
	__u16 args_count;
	__u16 args_size;
	__u32 flags;
	char comm[TASK_COMM_LEN];
};

#endif /* __EXECSNOOP_H */
