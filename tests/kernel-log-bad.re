WARNING:
BUG:
Oops
Call Trace
general protection fault
kernel BUG
refcount_t:
list_(add|del) corruption
UBSAN:
KASAN:
possible (recursive|circular) locking
inconsistent lock state
suspicious RCU usage
DMA-API: .*(device driver|out of memory|exceeded|pending)
unreferenced object
blocked for more than
Kernel memory leak detector disabled
detected stalls
soft lockup
