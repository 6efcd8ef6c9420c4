// Reads a configuration file and its includes into a ConfigurationFile, collecting every
// problem (not just the first) as `FILE:LINE: message` diagnostics in file and line order.
// Files are read through a ConfigurationFileSystem, with limits on sizes and counts, so a
// hostile included file cannot make the parser use unbounded time or memory.
import SpipedSystem

/// Resource limits of one parse.
public struct ConfigurationLimits: Equatable, Sendable {
    /// Largest file, in bytes.
    public var maximumFileByteCount: Int
    /// Largest total of all files, in bytes.
    public var maximumTotalByteCount: Int
    /// Most files (main file included).
    public var maximumFileCount: Int
    /// Most pipes.
    public var maximumPipeCount: Int
    /// Deepest nesting of includes (the main file is depth 0).
    public var maximumIncludeDepth: Int
    /// Most diagnostics before the parser gives up.
    public var maximumDiagnosticCount: Int

    /// Creates limits.
    public init(maximumFileByteCount: Int, maximumTotalByteCount: Int, maximumFileCount: Int,
                maximumPipeCount: Int, maximumIncludeDepth: Int, maximumDiagnosticCount: Int) {
        self.maximumFileByteCount = maximumFileByteCount
        self.maximumTotalByteCount = maximumTotalByteCount
        self.maximumFileCount = maximumFileCount
        self.maximumPipeCount = maximumPipeCount
        self.maximumIncludeDepth = maximumIncludeDepth
        self.maximumDiagnosticCount = maximumDiagnosticCount
    }

    /// 1 MiB per file, 64 MiB in all, 10000 files, 10000 pipes, includes 8 deep, 200 diagnostics.
    public static let standard = ConfigurationLimits(
        maximumFileByteCount: 1 << 20, maximumTotalByteCount: 64 << 20, maximumFileCount: 10_000,
        maximumPipeCount: 10_000, maximumIncludeDepth: 8, maximumDiagnosticCount: 200)
}

/// The configuration-file reader.
public enum ConfigurationFileParser {
    /// Reads the file at `path` and everything it includes. Relative include patterns and key
    /// and pid-file paths are resolved against the directory of the file naming them, so pass
    /// an absolute `path` when the process may change directory later.
    ///
    /// Throws every error found (and any key-file-independent problem), sorted by file (in
    /// reading order) and line; on success returns the configuration with defaults filled in.
    public static func parse(
        path: String,
        fileSystem: some ConfigurationFileSystem = DiskConfigurationFileSystem(),
        limits: ConfigurationLimits = .standard
    ) throws(ConfigurationErrors) -> ConfigurationFile {
        var reader = ConfigurationReader(fileSystem: fileSystem, limits: limits)
        reader.readMainFile(path)
        return try reader.result()
    }

    /// Parses `text` as the main file named `path` (includes are read from `fileSystem`).
    public static func parse(
        text: String, path: String,
        fileSystem: some ConfigurationFileSystem = InMemoryConfigurationFileSystem(files: [:]),
        limits: ConfigurationLimits = .standard
    ) throws(ConfigurationErrors) -> ConfigurationFile {
        var reader = ConfigurationReader(fileSystem: fileSystem, limits: limits)
        reader.readMainFile(path, contents: Array(text.utf8))
        return try reader.result()
    }
}

/// The state of one parse.
struct ConfigurationReader<FileSystem: ConfigurationFileSystem> {
    let fileSystem: FileSystem
    let limits: ConfigurationLimits
    /// Every diagnostic so far, unsorted.
    var diagnostics: [ConfigurationDiagnostic] = []
    /// The `tooManyErrors` diagnostic, kept apart so it sorts last.
    var overflow: ConfigurationDiagnostic?
    /// Set when a limit was reached: nothing more is read or checked.
    var stopped = false
    /// Files read, in order.
    var filesRead: [String] = []
    /// Bytes read in all.
    var totalByteCount = 0
    /// Identities and paths of the files being read, outermost first (for cycles).
    var includeStack: [(identity: String, path: String)] = []
    /// Set once the main file was read.
    var mainFileRead = false
    /// The global settings being collected.
    var globals = GlobalDraft()
    /// Every section seen, in order.
    var drafts: [PipeDraft] = []
    /// First section of each name.
    var sectionsByName: [String: SourceLocation] = [:]
    /// When set (`--check`), user and group names are looked up.
    var accounts: ConfigurationAccountLookup?

    init(fileSystem: FileSystem, limits: ConfigurationLimits) {
        self.fileSystem = fileSystem
        self.limits = limits
    }

    // MARK: - Diagnostics

    /// Records a problem; past the limit records `tooManyErrors` once and stops.
    mutating func report(_ problem: ConfigurationProblem, at location: SourceLocation) {
        guard !stopped else { return }
        if diagnostics.count >= limits.maximumDiagnosticCount {
            overflow = ConfigurationDiagnostic(.tooManyErrors(limit: limits.maximumDiagnosticCount), at: location)
            stopped = true
            return
        }
        diagnostics.append(ConfigurationDiagnostic(problem, at: location))
    }

    /// Records a problem that ends the parse.
    mutating func reportAndStop(_ problem: ConfigurationProblem, at location: SourceLocation) {
        report(problem, at: location)
        stopped = true
    }

    /// The configuration, or every diagnostic in order.
    func result() throws(ConfigurationErrors) -> ConfigurationFile {
        var all = sortedDiagnostics(diagnostics, fileOrder: filesRead)
        if let overflow { all.append(overflow) }
        if !all.isEmpty { throw ConfigurationErrors(all) }
        return ConfigurationFile(globals: globals.settings, pipes: drafts.compactMap(\.definition), sourceFiles: filesRead)
    }

    // MARK: - Files

    /// Reads the main file (or uses `contents`), then checks what needs every pipe.
    mutating func readMainFile(_ path: String, contents: [UInt8]? = nil) {
        let whole = SourceLocation(file: path, line: 0)
        if let contents {
            guard contents.count <= limits.maximumFileByteCount else {
                report(.cannotRead(path: path, .tooLarge(limit: limits.maximumFileByteCount)), at: whole)
                return
            }
            totalByteCount = contents.count
            includeStack.append((fileSystem.identity(ofPath: path), path))
            parseFile(path, contents: contents, depth: 0)
            includeStack.removeLast()
        } else {
            readFile(path, depth: 0, includedFrom: nil)
        }
        guard mainFileRead, !stopped else { return }
        checkSources()
        if drafts.isEmpty { report(.noPipes, at: whole) }
    }

    /// Reads one file (checking cycles and limits) and parses it.
    mutating func readFile(_ path: String, depth: Int, includedFrom include: SourceLocation?) {
        guard !stopped else { return }
        let whole = include ?? SourceLocation(file: path, line: 0)
        let identity = fileSystem.identity(ofPath: path)
        if includeStack.contains(where: { $0.identity == identity }) {
            report(.includeCycle(includeStack.map(\.path) + [path]), at: whole)
            return
        }
        guard filesRead.count < limits.maximumFileCount else {
            reportAndStop(.tooManyFiles(limit: limits.maximumFileCount), at: whole)
            return
        }
        let contents: [UInt8]
        do {
            contents = try fileSystem.readFile(atPath: path, maximumByteCount: limits.maximumFileByteCount)
        } catch {
            report(.cannotRead(path: path, error), at: whole)
            return
        }
        totalByteCount += contents.count
        guard totalByteCount <= limits.maximumTotalByteCount else {
            reportAndStop(.tooManyBytes(limit: limits.maximumTotalByteCount), at: whole)
            return
        }
        includeStack.append((identity, path))
        parseFile(path, contents: contents, depth: depth)
        includeStack.removeLast()
    }

    /// Parses the lines of one file.
    mutating func parseFile(_ path: String, contents: [UInt8], depth: Int) {
        if depth == 0 { mainFileRead = true }
        filesRead.append(path)
        let directory = ConfigurationPaths.directory(of: path)
        var current: PipeDraft?
        for line in ConfigurationLexer.lines(contents) {
            guard !stopped else { return }
            let location = SourceLocation(file: path, line: line.number)
            switch line.content {
            case .blank:
                continue
            case .malformed(let problem):
                report(problem, at: location)
                current?.hasErrors = true
            case .section(let name):
                if let finished = current { finish(finished) }
                current = startSection(name, at: location, directory: directory)
            case .assignment(let option, let value):
                if current != nil {
                    assignInPipe(&current!, option, value, at: location)
                } else {
                    assignGlobal(option, value, at: location, depth: depth, directory: directory)
                }
            }
        }
        if let finished = current, !stopped { finish(finished) }
    }

    // MARK: - Global part

    /// Handles `option = value` before the first section of a file.
    mutating func assignGlobal(_ option: String, _ value: String, at location: SourceLocation, depth: Int, directory: String) {
        guard ConfigurationOptionNames.global.contains(option) else {
            if ConfigurationOptionNames.pipe.contains(option) {
                report(.pipeOptionOutsidePipe(option), at: location)
            } else {
                report(.unknownOption(option, suggestion: ConfigurationOptionNames.suggestion(for: option)), at: location)
            }
            return
        }
        if option == "include" {
            guard !value.isEmpty else { return report(.emptyValue(option: option), at: location) }
            include(value, at: location, depth: depth, directory: directory)
            return
        }
        guard depth == 0 else { return report(.globalOptionInIncludedFile(option), at: location) }
        if let first = globals.firstLines[option] { return report(.repeatedOption(option, firstLine: first), at: location) }
        globals.firstLines[option] = location.line
        guard !value.isEmpty else { return report(.emptyValue(option: option), at: location) }
        if let problem = globals.apply(option, value, directory: directory) { return report(problem, at: location) }
        if option == "user", let accounts, let privileges = globals.settings.privileges {
            if let user = privileges.user, !accounts.userExists(user) { report(.unknownUser(user), at: location) }
            if let group = privileges.group, !accounts.groupExists(group) { report(.unknownGroup(group), at: location) }
        }
    }

    /// Reads the files an `include` line names.
    mutating func include(_ value: String, at location: SourceLocation, depth: Int, directory: String) {
        let resolved = ConfigurationPaths.resolve(value, relativeTo: directory)
        let pattern: ConfigurationIncludePattern
        switch ConfigurationIncludePattern.parse(resolved) {
        case .success(let parsed): pattern = parsed
        case .failure(let problem): return report(problem, at: location)
        }
        guard depth < limits.maximumIncludeDepth else {
            return report(.includeTooDeep(limit: limits.maximumIncludeDepth), at: location)
        }
        let paths: [String]
        do {
            paths = try pattern.paths(in: fileSystem)
        } catch {
            // A wildcard over a directory that does not exist matches nothing, like an empty one.
            if case .wildcard(let directory, _) = pattern {
                if error != .notFound { report(.cannotListDirectory(path: directory.isEmpty ? "." : directory, error), at: location) }
            }
            return
        }
        for path in paths {
            guard !stopped else { return }
            readFile(path, depth: depth + 1, includedFrom: location)
        }
    }

    // MARK: - Sections

    /// Starts a section (checking its name, its uniqueness and the pipe limit).
    mutating func startSection(_ name: String, at location: SourceLocation, directory: String) -> PipeDraft? {
        guard drafts.count < limits.maximumPipeCount else {
            reportAndStop(.tooManyPipes(limit: limits.maximumPipeCount), at: location)
            return nil
        }
        var draft = PipeDraft(name: name, location: location, directory: directory)
        if !PipeDraft.isValidName(name) {
            report(.invalidPipeName(name), at: location)
            draft.hasErrors = true
        } else if let first = sectionsByName[name] {
            report(.duplicatePipeName(name, first: first), at: location)
            draft.hasErrors = true
        } else {
            sectionsByName[name] = location
        }
        return draft
    }

    /// Handles `option = value` inside a section.
    mutating func assignInPipe(_ draft: inout PipeDraft, _ option: String, _ value: String, at location: SourceLocation) {
        guard ConfigurationOptionNames.pipe.contains(option) else {
            draft.hasErrors = true
            if ConfigurationOptionNames.global.contains(option) {
                report(.globalOptionInsidePipe(option, pipe: draft.name), at: location)
            } else {
                report(.unknownOption(option, suggestion: ConfigurationOptionNames.suggestion(for: option)), at: location)
            }
            return
        }
        if !ConfigurationOptionNames.repeatable.contains(option), let first = draft.firstLines[option] {
            draft.hasErrors = true
            return report(.repeatedOption(option, firstLine: first), at: location)
        }
        if draft.firstLines[option] == nil { draft.firstLines[option] = location.line }
        guard !value.isEmpty else {
            draft.hasErrors = true
            return report(.emptyValue(option: option), at: location)
        }
        if let problem = draft.apply(option, value, at: location) {
            draft.hasErrors = true
            report(problem, at: location)
        } else if option == "socket-group", let accounts, !accounts.groupExists(value) {
            draft.hasErrors = true
            report(.unknownGroup(value), at: location)
        }
    }

    /// Checks a finished section and records it.
    mutating func finish(_ draft: PipeDraft) {
        var draft = draft
        for (problem, location) in draft.validate() {
            draft.hasErrors = true
            report(problem, at: location)
        }
        drafts.append(draft)
    }

    /// Reports every pipe that listens on an address an earlier pipe already uses.
    mutating func checkSources() {
        var owners: [String: (pipe: String, location: SourceLocation)] = [:]
        for draft in drafts {
            guard let source = draft.source, let line = draft.firstLines["source"] else { continue }
            let location = SourceLocation(file: draft.location.file, line: line)
            let key = ConfigurationValidation.listeningKey(source)
            if let owner = owners[key] {
                report(.duplicateSource(pipe: draft.name, address: source.description, otherPipe: owner.pipe, other: owner.location), at: location)
            } else {
                owners[key] = (draft.name, location)
            }
        }
    }
}
