// SPDX-License-Identifier: GPL-2.0
/* The tracepoints' definitions (trace.h); left out when built with DMAPLANE_TRACE=0. */
#define CREATE_TRACE_POINTS
#include "trace.h"
