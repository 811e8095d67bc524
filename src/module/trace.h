/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmaplane's tracepoints: /sys/kernel/tracing/events/dmaplane/. Endpoints
 * are named by their module-wide id (debugfs "endpoints"), operations by
 * the caller's cookie; no kernel address is ever recorded. A module built
 * with DMAPLANE_TRACE=0 defines NOTRACE and these compile to nothing.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM dmaplane

#if !defined(_DMAPLANE_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _DMAPLANE_TRACE_H

#include <linux/tracepoint.h>

TRACE_EVENT(dmaplane_submit,
	TP_PROTO(u64 ep, u64 cookie, u32 opcode, u64 length, bool queued),
	TP_ARGS(ep, cookie, opcode, length, queued),
	TP_STRUCT__entry(
		__field(u64, ep)
		__field(u64, cookie)
		__field(u32, opcode)
		__field(u64, length)
		__field(bool, queued)
	),
	TP_fast_assign(
		__entry->ep = ep;
		__entry->cookie = cookie;
		__entry->opcode = opcode;
		__entry->length = length;
		__entry->queued = queued;
	),
	TP_printk("ep=%llu cookie=%llu opcode=%u length=%llu%s",
		  __entry->ep, __entry->cookie, __entry->opcode,
		  __entry->length, __entry->queued ? " queued" : "")
);

TRACE_EVENT(dmaplane_complete,
	TP_PROTO(u64 ep, u64 cookie, u32 opcode, int status, u32 bytes,
		 u64 latency_ns),
	TP_ARGS(ep, cookie, opcode, status, bytes, latency_ns),
	TP_STRUCT__entry(
		__field(u64, ep)
		__field(u64, cookie)
		__field(u32, opcode)
		__field(int, status)
		__field(u32, bytes)
		__field(u64, latency_ns)
	),
	TP_fast_assign(
		__entry->ep = ep;
		__entry->cookie = cookie;
		__entry->opcode = opcode;
		__entry->status = status;
		__entry->bytes = bytes;
		__entry->latency_ns = latency_ns;
	),
	TP_printk("ep=%llu cookie=%llu opcode=%u status=%d bytes=%u latency_ns=%llu",
		  __entry->ep, __entry->cookie, __entry->opcode,
		  __entry->status, __entry->bytes, __entry->latency_ns)
);

/* @sent: this side granted @cumulative; else the peer did. */
TRACE_EVENT(dmaplane_credit_grant,
	TP_PROTO(u64 ep, bool sent, u32 cumulative, u32 avail),
	TP_ARGS(ep, sent, cumulative, avail),
	TP_STRUCT__entry(
		__field(u64, ep)
		__field(bool, sent)
		__field(u32, cumulative)
		__field(u32, avail)
	),
	TP_fast_assign(
		__entry->ep = ep;
		__entry->sent = sent;
		__entry->cumulative = cumulative;
		__entry->avail = avail;
	),
	TP_printk("ep=%llu %s cumulative=%u avail=%u", __entry->ep,
		  __entry->sent ? "sent" : "received", __entry->cumulative,
		  __entry->avail)
);

/* A stall begins (@duration_ns 0) or ends after @duration_ns. */
TRACE_EVENT(dmaplane_credit_stall,
	TP_PROTO(u64 ep, bool begin, u64 duration_ns, u32 queued),
	TP_ARGS(ep, begin, duration_ns, queued),
	TP_STRUCT__entry(
		__field(u64, ep)
		__field(bool, begin)
		__field(u64, duration_ns)
		__field(u32, queued)
	),
	TP_fast_assign(
		__entry->ep = ep;
		__entry->begin = begin;
		__entry->duration_ns = duration_ns;
		__entry->queued = queued;
	),
	TP_printk("ep=%llu %s duration_ns=%llu queued=%u", __entry->ep,
		  __entry->begin ? "begin" : "end", __entry->duration_ns,
		  __entry->queued)
);

TRACE_EVENT(dmaplane_teardown,
	TP_PROTO(u64 ep, int error, u32 inflight, u32 queued),
	TP_ARGS(ep, error, inflight, queued),
	TP_STRUCT__entry(
		__field(u64, ep)
		__field(int, error)
		__field(u32, inflight)
		__field(u32, queued)
	),
	TP_fast_assign(
		__entry->ep = ep;
		__entry->error = error;
		__entry->inflight = inflight;
		__entry->queued = queued;
	),
	TP_printk("ep=%llu error=%d inflight=%u queued=%u", __entry->ep,
		  __entry->error, __entry->inflight, __entry->queued)
);

#endif /* _DMAPLANE_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
