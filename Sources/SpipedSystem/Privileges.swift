// Dropping root privileges after binding (spiped's `-u user`, `-u :group`, `-u user:group`).
//
// Two steps: `Privileges.resolve` looks the names up (before the process forks into a daemon, so
// an unknown name fails while the launching command can still report it), and `Privileges.drop`
// switches ids and then checks that nothing of the old identity is left. Order inside `drop`
// matters: supplementary groups, then the group ids, then the user ids — once the user id is no
// longer root, the group calls would be refused.
import Glibc

/// `int getresuid(uid_t *ruid, uid_t *euid, uid_t *suid)` — getresuid(2) (a GNU extension,
/// hidden from Swift's Glibc module).
@_extern(c, "getresuid") func system_getresuid(_ real: UnsafeMutablePointer<uid_t>, _ effective: UnsafeMutablePointer<uid_t>, _ saved: UnsafeMutablePointer<uid_t>) -> Int32
/// `int getresgid(gid_t *rgid, gid_t *egid, gid_t *sgid)` — getresgid(2).
@_extern(c, "getresgid") func system_getresgid(_ real: UnsafeMutablePointer<gid_t>, _ effective: UnsafeMutablePointer<gid_t>, _ saved: UnsafeMutablePointer<gid_t>) -> Int32

/// The user and/or group named by `-u`, before any lookup.
public struct PrivilegeDropSpec: Equatable, Sendable {
    /// User name (or decimal uid) to switch to, if any.
    public var user: String?
    /// Group name (or decimal gid) to switch to, if any.
    public var group: String?

    /// Creates a specification; at least one of the two should be set.
    public init(user: String?, group: String?) {
        self.user = user
        self.group = group
    }

    /// Parses `user`, `:group` or `user:group` (split at the first colon).
    public static func parse(_ text: String) throws(PrivilegeError) -> PrivilegeDropSpec {
        guard let colon = text.firstIndex(of: ":") else {
            guard !text.isEmpty else { throw .emptySpecification }
            return PrivilegeDropSpec(user: text, group: nil)
        }
        let user = String(text[..<colon])
        let group = String(text[text.index(after: colon)...])
        guard !group.isEmpty else {
            if user.isEmpty { throw .emptySpecification }
            throw .emptyGroupName(text)
        }
        return PrivilegeDropSpec(user: user.isEmpty ? nil : user, group: group)
    }
}

/// The ids a `PrivilegeDropSpec` names, looked up and ready for `Privileges.drop`.
public struct ResolvedPrivileges: Equatable, Sendable {
    /// The uid to take as real, effective and saved uid; nil keeps the current ones (`-u :group`).
    public var userID: uid_t?
    /// The gid to take as real, effective and saved gid.
    public var groupID: gid_t
    /// The complete supplementary group list to set (sorted, no duplicates).
    public var supplementaryGroups: [gid_t]

    /// Ids given directly (tests; `Privileges.resolve` is the usual way to get them).
    public init(userID: uid_t?, groupID: gid_t, supplementaryGroups: [gid_t]) {
        self.userID = userID
        self.groupID = groupID
        self.supplementaryGroups = Array(Set(supplementaryGroups)).sorted()
    }
}

/// Why privileges could not be dropped.
public enum PrivilegeError: Error, Equatable, Sendable {
    /// `-u ""` or `-u :`: neither a user nor a group.
    case emptySpecification
    /// `-u user:` with nothing after the colon (the whole argument).
    case emptyGroupName(String)
    /// No such user in the password database (and not a decimal uid).
    case noSuchUser(String)
    /// No such group in the group database (and not a decimal gid).
    case noSuchGroup(String)
    /// A decimal uid with no password database entry and no group given: its group is unknown.
    case noGroupForUser(String)
    /// A system call failed (name, errno).
    case systemCall(String, errno: Int32)
    /// After switching, an id still differs from its target, or root could be regained (what).
    case notFullyDropped(String)

    /// A one-line explanation for error messages.
    public var message: String {
        switch self {
        case .emptySpecification: return "Need to specify user and/or group"
        case .emptyGroupName(let text): return "Empty group name: \"\(text)\""
        case .noSuchUser(let name): return "No such user: \(name)"
        case .noSuchGroup(let name): return "No such group: \(name)"
        case .noGroupForUser(let user): return "User \(user) has no password database entry, so its group is unknown; use -u \(user):group"
        case .systemCall(let name, let code): return "\(name): \(errnoDescription(code))"
        case .notFullyDropped(let what): return "privileges not fully dropped: \(what)"
        }
    }
}

/// Switching user and group, and checking that the switch is complete.
public enum Privileges {
    /// Looks up the ids `spec` names; changes nothing. Call it before daemonizing, so an unknown
    /// name is reported by the command that was run.
    ///
    /// - `user`: the user's uid, its primary group (`pw_gid`) and every group that lists it in
    ///   the group database (`getgrouplist`, what `initgroups(3)` sets).
    /// - `user:group`: the user's uid, and `group` as the only group (primary and the single
    ///   supplementary group): naming a group says which group the process runs with.
    /// - `:group`: the uid is kept; `group` becomes the primary and only supplementary group.
    ///
    /// Names are looked up with getpwnam/getgrnam; a decimal number that names no entry is
    /// looked up as an id (getpwuid) and otherwise used as a numeric id — except a numeric user
    /// without an entry and without a group, whose group would be unknown (`.noGroupForUser`).
    public static func resolve(_ spec: PrivilegeDropSpec) throws(PrivilegeError) -> ResolvedPrivileges {
        var explicitGroup: gid_t?
        if let group = spec.group {
            if let entry = getgrnam(group) {
                explicitGroup = entry.pointee.gr_gid
            } else if let number = UInt32(group) {
                explicitGroup = number
            } else {
                throw .noSuchGroup(group)
            }
        }
        guard let user = spec.user else {
            guard let explicitGroup else { throw .emptySpecification }
            return ResolvedPrivileges(userID: nil, groupID: explicitGroup, supplementaryGroups: [explicitGroup])
        }
        var entry = getpwnam(user)
        if entry == nil, let number = UInt32(user) { entry = getpwuid(number) }
        if let explicitGroup {
            let userID: uid_t
            if let entry {
                userID = entry.pointee.pw_uid
            } else if let number = UInt32(user) {
                userID = number
            } else {
                throw .noSuchUser(user)
            }
            return ResolvedPrivileges(userID: userID, groupID: explicitGroup, supplementaryGroups: [explicitGroup])
        }
        guard let entry else {
            if UInt32(user) != nil { throw .noGroupForUser(user) }
            throw .noSuchUser(user)
        }
        let userID = entry.pointee.pw_uid
        let primaryGroup = entry.pointee.pw_gid
        let name = String(cString: entry.pointee.pw_name)
        let groups = try groupList(of: name, primaryGroup: primaryGroup)
        return ResolvedPrivileges(userID: userID, groupID: primaryGroup, supplementaryGroups: groups)
    }

    /// Switches to `target` and verifies the result; any failure throws (the caller must not
    /// go on running with partial privileges).
    ///
    /// Sets the supplementary groups (skipped when they already are exactly the target, which
    /// needs no privilege), then real, effective and saved gid (`setgid`, which sets all three
    /// when privileged), then the uid likewise (`setuid`). Then checks, from the kernel's view:
    /// getresgid and getresuid give the targets three times, getgroups gives exactly the target
    /// groups, and unless the process still runs as uid 0 on purpose, `setuid(0)` fails (and
    /// `setgid(0)` too, unless the target gid is 0) — a process that could become root again has
    /// dropped nothing.
    public static func drop(_ target: ResolvedPrivileges) throws(PrivilegeError) {
        if try currentSupplementaryGroups() != target.supplementaryGroups {
            let result = target.supplementaryGroups.withUnsafeBufferPointer { groups in
                setgroups(groups.count, groups.baseAddress)
            }
            guard result == 0 else { throw .systemCall("setgroups", errno: errno) }
        }
        guard setgid(target.groupID) == 0 else { throw .systemCall("setgid", errno: errno) }
        if let userID = target.userID {
            guard setuid(userID) == 0 else { throw .systemCall("setuid", errno: errno) }
        }
        try verify(target)
    }

    /// Checks that the process runs with exactly `target`'s ids and cannot regain root.
    static func verify(_ target: ResolvedPrivileges) throws(PrivilegeError) {
        var realGroup = gid_t(), effectiveGroup = gid_t(), savedGroup = gid_t()
        guard system_getresgid(&realGroup, &effectiveGroup, &savedGroup) == 0 else { throw .systemCall("getresgid", errno: errno) }
        guard realGroup == target.groupID, effectiveGroup == target.groupID, savedGroup == target.groupID else {
            throw .notFullyDropped("gids are \(realGroup)/\(effectiveGroup)/\(savedGroup) (real/effective/saved), not \(target.groupID)")
        }
        var realUser = uid_t(), effectiveUser = uid_t(), savedUser = uid_t()
        guard system_getresuid(&realUser, &effectiveUser, &savedUser) == 0 else { throw .systemCall("getresuid", errno: errno) }
        if let userID = target.userID {
            guard realUser == userID, effectiveUser == userID, savedUser == userID else {
                throw .notFullyDropped("uids are \(realUser)/\(effectiveUser)/\(savedUser) (real/effective/saved), not \(userID)")
            }
        }
        let groups = try currentSupplementaryGroups()
        guard groups == target.supplementaryGroups else {
            throw .notFullyDropped("supplementary groups are \(groups), not \(target.supplementaryGroups)")
        }
        // Still uid 0 throughout (`-u :group` as root, or `-u root`): root can always switch
        // back, so there is nothing to test. With any one of the uids 0, setuid(0) succeeds below.
        if realUser == 0 && effectiveUser == 0 && savedUser == 0 { return }
        if setuid(0) == 0 {
            throw .notFullyDropped("setuid(0) succeeded")
        }
        if target.groupID != 0 && setgid(0) == 0 {
            throw .notFullyDropped("setgid(0) succeeded")
        }
    }

    /// getgroups(2), sorted and without duplicates.
    static func currentSupplementaryGroups() throws(PrivilegeError) -> [gid_t] {
        let count = getgroups(0, nil)
        guard count >= 0 else { throw .systemCall("getgroups", errno: errno) }
        var groups = [gid_t](repeating: 0, count: Int(count))
        let filled = groups.withUnsafeMutableBufferPointer { getgroups(count, $0.baseAddress) }
        guard filled >= 0 else { throw .systemCall("getgroups", errno: errno) }
        return Array(Set(groups.prefix(Int(filled)))).sorted()
    }

    /// getgrouplist(3): `primaryGroup` and every group listing `user` as a member.
    static func groupList(of user: String, primaryGroup: gid_t) throws(PrivilegeError) -> [gid_t] {
        var capacity: Int32 = 32
        // getgrouplist returns -1 and the needed count when the buffer is too small; bounded
        // retries guard against a group database that keeps growing.
        for _ in 0..<8 {
            var groups = [gid_t](repeating: 0, count: Int(capacity))
            var count = capacity
            let result = groups.withUnsafeMutableBufferPointer { getgrouplist(user, primaryGroup, $0.baseAddress, &count) }
            if result >= 0 {
                return Array(Set(groups.prefix(Int(count)))).sorted()
            }
            capacity = max(count, capacity * 2)
        }
        throw .systemCall("getgrouplist", errno: ERANGE)
    }
}
