// Dropping root privileges after binding (spiped's `-u user`, `-u :group`, `-u user:group`).
// Order matters: supplementary groups, then the group id, then the user id — once the user id
// is no longer root, the group calls would be refused.
import Glibc

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
    /// A system call failed (name, errno).
    case systemCall(String, errno: Int32)

    /// A one-line explanation for error messages.
    public var message: String {
        switch self {
        case .emptySpecification: return "Need to specify user and/or group"
        case .emptyGroupName(let text): return "Empty group name: \"\(text)\""
        case .noSuchUser(let name): return "No such user: \(name)"
        case .noSuchGroup(let name): return "No such group: \(name)"
        case .systemCall(let name, let code): return "\(name): \(errnoDescription(code))"
        }
    }
}

/// Switching user and group.
public enum Privileges {
    /// Looks up and switches to the user and/or group of `spec`, as the reference does:
    /// supplementary groups are cleared, then the gid is set when a group is given, then the
    /// uid when a user is given. A user alone does not change the gid (checked against Debian's
    /// spiped 1.6.2: `-u nobody` leaves gid 0). Names are looked up with getpwnam/getgrnam; a
    /// decimal number that names no entry is used as a numeric id. A failing `setgroups` (not
    /// permitted when not root) is not fatal; it is returned as a warning. Returns the warnings.
    public static func drop(to spec: PrivilegeDropSpec) throws(PrivilegeError) -> [String] {
        var warnings: [String] = []
        var userID: uid_t?
        var groupID: gid_t?
        if let user = spec.user {
            if let entry = getpwnam(user) {
                userID = entry.pointee.pw_uid
            } else if let number = UInt32(user) {
                userID = number
            } else {
                throw .noSuchUser(user)
            }
        }
        if let group = spec.group {
            if let entry = getgrnam(group) {
                groupID = entry.pointee.gr_gid
            } else if let number = UInt32(group) {
                groupID = number
            } else {
                throw .noSuchGroup(group)
            }
        }
        if setgroups(0, nil) != 0 {
            warnings.append("Could not clear supplementary groups: \(errnoDescription(errno))")
        }
        if let gid = groupID {
            guard setgid(gid) == 0 else { throw .systemCall("setgid", errno: errno) }
        }
        if let uid = userID {
            guard setuid(uid) == 0 else { throw .systemCall("setuid", errno: errno) }
        }
        return warnings
    }
}
