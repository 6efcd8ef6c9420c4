import Glibc

/// A POSIX thread (`pthread_create`) running a closure; joined explicitly.
public final class SystemThread: @unchecked Sendable {
    private var handle: pthread_t

    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// Starts a thread running `body`. `name` (up to 15 bytes) shows in `ps -L`/`top -H`.
    public init(name: String, _ body: @escaping @Sendable () -> Void) throws(SystemError) {
        let context = Unmanaged.passRetained(Body(body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { raw in
            let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
            body.run()
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw SystemError("pthread_create", Errno(rawValue: result))
        }
        handle = thread
        _ = system_pthread_setname_np(thread, String(name.utf8.prefix(15))!)
    }

    /// `pthread_join`: waits for the thread to finish.
    public func join() {
        pthread_join(handle, nil)
    }

    /// `pthread_detach`: the thread cleans up by itself when it ends.
    public func detach() {
        pthread_detach(handle)
    }

    /// Lowers the calling thread's scheduling priority (`setpriority(PRIO_PROCESS, gettid())`,
    /// a per-thread nice value on Linux) so background work yields to event loops.
    public static func lowerCallingThreadPriority(niceness: Int32 = 10) {
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(system_gettid()), niceness)
    }
}
