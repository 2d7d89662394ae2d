/*
 * Issue 14's protocol, "Verifying from memory: leases and acknowledged invalidation"
 * (docs/design.md), as a Promela model for spin. Checked by tests/model/test_spin.py.
 *
 * One tenant A, its state a generation (0, then 1, 2 ... per change). The writer's fence,
 * commit and seal are one step, "truth := k": what today's exact path (Redis get_state,
 * the database on a miss) answers from then on; that part is proven by the Redis protocol
 * and its tests, not here. A second writer changes another tenant B, whose only role is to
 * put entries in the stream that do not concern A.
 *
 * Safety: a verify that starts after a change of A returned never uses an older generation
 * (the assert in Verifier). Only memory can answer old: the exact path reads truth.
 *
 * Every step of the protocol can be removed with -D<NAME> (see tests/model/test_spin.py):
 *   NO_FLOOR             a memory insert ignores floor
 *   NO_ACK_WAIT          the writer returns without waiting for acks or expiries
 *   NO_REGISTRY_AGE_WAIT the writer ignores a registry younger than L
 *   NO_DEADLINE_CHECK    verify ignores its lease deadline (use and insert)
 *   ACK_BEFORE_DROP      the listener acks an entry before it drops memory
 *   NO_GAP_CHECK         the listener applies an entry after a gap as if none were missing
 *   NO_REG_CHECK         a memory insert ignores a change of registration (both checks)
 *   NO_REG_EPOCH         registration does not advance the epoch (only the incarnation is checked)
 *   NO_REG_REVOKE        registration does not revoke the deadline before its script
 *   DEADLINE_FROM_REPLY  the deadline is measured from the renewal's reply, not its sending
 *   RENEW_EXPIRED        the renew script extends a lease that has already expired
 *   DROP_BEFORE_FLOOR    the listener drops memory before raising floor
 *   SPLIT_INSERT         a memory insert's checks and the insert are two steps
 *   NOTE_AFTER_READ      verify notes s = applied after its exact read, not before
 *   REGISTER_AS_WRITTEN  registration as design.md words it: NO_REG_EPOCH + NO_REG_REVOKE
 *   NO_REG_INC_CHECK     an insert checks the epoch but not the registry incarnation: this
 *                        one still verifies (the epoch implies it), so it is no test's mutation
 */

#ifndef L
#define L 2              /* lease length, in clock ticks */
#endif
#ifndef TMAX
#define TMAX 5           /* the clock stops here: bounds the state space */
#endif
#ifndef NCHANGE
#define NCHANGE 1        /* changes of tenant A */
#endif
#ifndef NOTHER
#define NOTHER 1         /* changes of tenant B */
#endif
#ifndef MAXRESTART
#define MAXRESTART 1     /* Redis restarts (each loses every key) */
#endif
#ifndef NW
#define NW 1             /* workers modelled in full: 1, plus the Others process; or 2 */
#endif
#define MAXSEQ (NCHANGE + NOTHER)
#ifdef REGISTER_AS_WRITTEN
#define NO_REG_REVOKE
#define NO_REG_EPOCH
#endif
#define TA 0             /* tenant of a stream entry */
#define TB 1

/* ---- time: one global clock; Redis TIME and every worker's monotonic clock read it ---- */
byte now;

/* ---- the tenant ---- */
byte truth;              /* generation the exact path answers (sealed in Redis, committed) */
byte retgen;             /* generation of the last change of A that returned */

/* ---- Redis ---- */
byte reg;                /* lease:reg, the registry incarnation; 0 = absent */
byte reg_t0;             /* when it began (Redis TIME) */
byte nextreg;            /* incarnations never repeat */
bit  member[NW];         /* lease:exp ZSET membership ... */
byte exp[NW];            /* ... and expiry */
byte ack[NW];            /* lease:ack */
byte sseq;               /* inval:seq, the last seq handed out */
byte lo = 1;             /* the oldest seq the stream still holds (trimmed below) */
bit  ent[MAXSEQ + 1];    /* inval stream: ent[seq] = its tenant */
byte sinc;               /* which stream a cursor refers to: a restart starts a new one */
byte restarts;

/* ---- each worker (its listener and its verify thread share these) ---- */
bit  has[NW];            /* memory[A] present ... */
byte mgen[NW];           /* ... holding this generation */
byte floorA[NW];         /* floor[A] */
byte applied[NW];
byte deadline[NW];       /* memory is used only while now < deadline */
byte wreg[NW];           /* the registry incarnation registered under */
bit  rereg[NW];          /* the epoch of register, as a bit: "registered since the verify
                          * noted s" (one verify thread per worker here) */
byte cur[NW];            /* XREAD cursor: the last seq read ... */
byte cinc[NW];           /* ... in this stream */

#define live(w)       (member[w] && exp[w] > now)
#define pending(w, s) (live(w) && ack[w] < (s))
#if NW == 1
#define waiting(s)    pending(0, s)
#else
#define waiting(s)    (pending(0, s) || pending(1, s))
#endif
#define nextseq(w)    (cinc[w] == sinc -> (lo > cur[w] + 1 -> lo : cur[w] + 1) : lo)
#ifdef NO_DEADLINE_CHECK
#define leased(w)     true
#else
#define leased(w)     (now < deadline[w])
#endif

active proctype Clock() {
end:
    do
    :: atomic { now < TMAX -> now++ }
    od
}

/* A restart (or FLUSHDB) loses every key; the trim drops the oldest entry (XADD MAXLEN keeps
 * at least the newest one), at any moment: a stronger adversary than "the last N". */
active proctype Redis() {
    byte i;
end:
    do
    :: d_step {
           restarts < MAXRESTART ->
           restarts++; reg = 0; reg_t0 = 0;
           i = 0;
           do
           :: i < NW -> member[i] = 0; exp[i] = 0; ack[i] = 0; i++
           :: else -> break
           od;
           sseq = 0; lo = 1; sinc++;
           i = 1;
           do
           :: i <= MAXSEQ -> ent[i] = 0; i++
           :: else -> i = 0; break
           od
       }
    :: d_step { lo < sseq -> lo++ }
    od
}

/* Change of tenant A: design.md "The protocol", **Change**. */
active proctype WriterA() {
    byte k = 1;
    byte s;
    byte t0;
    do
    :: k <= NCHANGE ->
        truth = k;                                            /* fence, commit, seal */
        d_step { sseq < MAXSEQ -> sseq++; ent[sseq] = TA; s = sseq };   /* XADD */
#ifndef NO_ACK_WAIT
        !waiting(s);                                          /* the poll script */
#endif
#ifndef NO_REGISTRY_AGE_WAIT
        d_step {
            if
            :: reg == 0 -> nextreg++; reg = nextreg; reg_t0 = now
            :: else
            fi;
            t0 = reg_t0
        };
        (now >= t0 + L);
#endif
        d_step { retgen = k; k++; s = 0; t0 = 0 }             /* return */
    :: else -> break
    od
}

active proctype WriterB() {
    byte k = 1;
    do
    :: k <= NOTHER -> d_step { sseq < MAXSEQ -> sseq++; ent[sseq] = TB; k++ }
    :: else -> break
    od
}

/* Registration. design.md: "clear memory and floor; one script creates the registry
 * incarnation if absent or not current, adds the worker with expiry now_R + L, sets its ack
 * to the stream's current seq, and returns that seq and the registry incarnation. The worker
 * sets applied to it and deadline = t_sent + L."
 * As worded (REGISTER_AS_WRITTEN) a verify whose exact read started before the registration
 * and inserts after it passes every check: floor was cleared, the registry incarnation may
 * be the same one (re-registration after a gap, or a lease lost under the same registry).
 * The default below closes it: the deadline is revoked before the script (no insert and no
 * use while the script's ack is in flight) and the epoch advances when the reply arrives (an
 * insert whose read started before it is refused). */
inline register(w) {
    d_step {
#ifndef NO_REG_REVOKE
        deadline[w] = 0;
#endif
        has[w] = 0; mgen[w] = 0; floorA[w] = 0
    };
    d_step {                                                  /* send; the script */
        tsent = now;
        if
        :: reg == 0 -> nextreg++; reg = nextreg; reg_t0 = now
        :: else
        fi;
        member[w] = 1; exp[w] = now + L; ack[w] = sseq;
        rseq = sseq; rreg = reg; rinc = sinc
    };
    d_step {                                                  /* the reply */
#ifndef NO_REG_EPOCH
        rereg[w] = 1;
#endif
        applied[w] = rseq; cur[w] = rseq; cinc[w] = rinc; wreg[w] = rreg;
        deadline[w] = tsent + L;
        tsent = 0; rseq = 0; rreg = 0; rinc = 0
    }
}

/* Renewal: extends the lease and records the ack, only if the registry incarnation is the
 * one registered under and the worker still holds its lease; else register again. */
inline renew(w) {
    d_step {                                                  /* send; the script */
        tsent = now;
#ifdef RENEW_EXPIRED
        ok = (reg == wreg[w] && member[w]);
#else
        ok = (reg == wreg[w] && live(w));
#endif
        if
        :: ok -> exp[w] = now + L; ack[w] = applied[w]
        :: else -> tsent = 0
        fi
    };
    if                                                        /* the reply */
    :: ok ->
        d_step {
#ifdef DEADLINE_FROM_REPLY
            deadline[w] = now + L;
#else
            deadline[w] = tsent + L;
#endif
            tsent = 0; ok = 0
        }
    :: else -> register(w)
    fi
}

/* Apply entry (eseq, et): floor, then drop and applied (one step: nothing reads applied in
 * between but a verify noting s, and an older s only makes its insert fail); the ack goes out
 * with the next renewal. */
inline apply() {
#ifdef ACK_BEFORE_DROP
    applied[w] = eseq;
    renew(w);
#endif
#ifdef DROP_BEFORE_FLOOR
    d_step { if :: et == TA -> has[w] = 0; mgen[w] = 0 :: else fi };
    d_step { if :: et == TA -> floorA[w] = eseq :: else fi; applied[w] = eseq; eseq = 0; et = 0 }
#else
    d_step { if :: et == TA -> floorA[w] = eseq :: else fi };
    d_step { if :: et == TA -> has[w] = 0; mgen[w] = 0 :: else fi; applied[w] = eseq; eseq = 0; et = 0 }
#endif
}

proctype Listener(byte w) {
    byte tsent, rseq, rreg, rinc, eseq;
    bit ok, et;
    register(w);
end:
    do
    :: d_step {                                               /* XREAD, one entry */
           nextseq(w) <= sseq ->
           eseq = nextseq(w); et = ent[eseq]; cur[w] = eseq; cinc[w] = sinc
       };
        if
#ifndef NO_GAP_CHECK
        :: eseq != applied[w] + 1 -> eseq = 0; et = 0; register(w)   /* a gap: drop all */
#endif
        :: else -> apply()
        fi
    :: renew(w)
    od
}

/* Verify: memory within the lease, else the exact path and a fenced insert. */
proctype Verifier(byte w) {
    byte s, g, r;
end:
    do
    :: d_step { leased(w) && has[w] -> assert(mgen[w] >= retgen) }
    :: else ->
#ifndef NOTE_AFTER_READ
        /* s, and the registration, noted before the read; without a live lease no insert is
         * offered, so the read is today's path and changes nothing here */
        d_step { leased(w) -> s = applied[w]; rereg[w] = 0; r = wreg[w] };
#endif
        g = truth;                                            /* the exact path */
#ifdef NOTE_AFTER_READ
        d_step { leased(w) -> s = applied[w]; rereg[w] = 0; r = wreg[w] };
#endif
#ifdef NO_FLOOR
#define FLOOR_OK true
#else
#define FLOOR_OK (floorA[w] <= s)
#endif
#if defined(NO_REG_CHECK)
#define REG_OK true
#elif defined(NO_REG_INC_CHECK)
#define REG_OK (!rereg[w])
#else
#define REG_OK (wreg[w] == r && !rereg[w])
#endif
#ifdef SPLIT_INSERT
        if                                  /* the checks, then the insert: two steps */
        :: leased(w) && FLOOR_OK && REG_OK -> d_step { has[w] = 1; mgen[w] = g; s = 0; g = 0; r = 0 }
        :: else -> d_step { s = 0; g = 0; r = 0 }
        fi
#else
        d_step {                                              /* the fenced insert */
            if
            :: leased(w) && FLOOR_OK && REG_OK -> has[w] = 1; mgen[w] = g
            :: else
            fi;
            s = 0; g = 0; r = 0
        }
#endif
    od
}

/* Worker 0 runs a listener and a verify thread. Worker 1 runs no verify thread: a verify
 * writes only its own worker's memory, which nothing else reads (its listener only clears
 * it), so worker 1's verify can change nothing worker 0, Redis or the writer sees; the
 * workers run the same code, so a stale use on worker 1 would be found, mirrored, on
 * worker 0.
 *
 * With NW == 1 (the default, small enough for CI with every fault on) worker 1 is replaced
 * by Others. What other workers do reaches worker 0 and the writer in two ways only: their
 * pending leases hold the writer back (which it may always be: a model process need not be
 * scheduled, so dropping them only adds behaviours), and a registration of theirs can create
 * the registry incarnation, setting t0 for the writer's age wait. Others does exactly that,
 * at any moment; so NW == 1 has every behaviour NW == 2 has, as worker 0 sees it. NW == 2
 * is checked too, with fewer faults (tests/model/test_spin.py). */
#if NW == 1
active proctype Others() {
end:
    do
    :: d_step { reg == 0 -> nextreg++; reg = nextreg; reg_t0 = now }
    od
}
#endif

init {
    atomic {
        run Listener(0); run Verifier(0);
#if NW == 2
        run Listener(1)
#endif
    }
}
