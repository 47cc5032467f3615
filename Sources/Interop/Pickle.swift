import Foundation

/// A value read from, or to be written as, a Python pickle. Nothing here is ever executed: a call the pickle asks for
/// (`REDUCE`, `NEWOBJ`) stays a `PickleObject` naming its callable and arguments, for the caller to interpret.
/// Lists, dicts and objects are shared references, as in Python: a pickle fills them after memoizing them.
public indirect enum PickleValue: CustomStringConvertible {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer wider than 64 bits (`LONG1`; a random generator's state), as its little-endian two's complement.
    case largeInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    /// A Python bytearray (`BYTEARRAY8`): numpy 2 pickles an array's data as one, so that it is writable.
    case bytearray([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    /// A module-level name (`GLOBAL`), checked against the reader's allow-list.
    case global(module: String, name: String)
    case object(PickleObject)
    /// A persistent id (`BINPERSID`): how `torch.save` refers to a tensor's storage record.
    case persistent(PickleValue)

    public var description: String {
        switch self {
        case .none: "None"
        case let .bool(b): b ? "True" : "False"
        case let .int(i): "\(i)"
        case let .largeInt(b): "<\(b.count)-byte integer>"
        case let .float(x): "\(x)"
        case let .string(s): "'\(s.prefix(60))'"
        case let .bytes(b), let .bytearray(b): "<\(b.count) bytes>"
        case let .tuple(t): "(" + t.prefix(8).map(\.description).joined(separator: ", ") + (t.count > 8 ? ", …" : "") + ")"
        case let .list(l): "[\(l.items.count) items]"
        case let .dict(d): "{\(d.entries.count) entries}"
        case let .global(module, name): "\(module).\(name)"
        case let .object(o): "\(o.callable)(…)"
        case let .persistent(id): "persistent \(id)"
        }
    }

    public var string: String? { if case let .string(s) = self { s } else { nil } }
    public var bool: Bool? { if case let .bool(b) = self { b } else { nil } }
    public var int: Int? { if case let .int(i) = self { i } else { nil } }
    public var tuple: [PickleValue]? { if case let .tuple(t) = self { t } else { nil } }
    public var dict: PickleDict? { if case let .dict(d) = self { d } else { nil } }
    public var object: PickleObject? { if case let .object(o) = self { o } else { nil } }
    /// A number as a Double (ints and floats).
    public var number: Double? {
        switch self {
        case let .int(i): Double(i)
        case let .float(x): x
        default: nil
        }
    }
}

/// What the reader tracks of a list, dict or object: its nesting depth, and whether it has been put inside another
/// value (after which it may not change: no cycles, and depths stay exact).
public class PickleContainer {
    var depth = 1
    var sealed = false
}

public final class PickleList: PickleContainer {
    public var items: [PickleValue]
    public init(_ items: [PickleValue] = []) { self.items = items }
}

public final class PickleDict: PickleContainer {
    public var entries: [(key: PickleValue, value: PickleValue)]
    public init(_ entries: [(key: PickleValue, value: PickleValue)] = []) { self.entries = entries }
    /// The value under the string key `key`.
    public subscript(key: String) -> PickleValue? { entries.last { $0.key.string == key }?.value }
}

/// A call the pickle describes but that is never made: `callable(*arguments)` (`REDUCE`), or `cls.__new__(cls,
/// *arguments)` (`NEWOBJ`), then `__setstate__(state)` (`BUILD`).
public final class PickleObject: PickleContainer {
    public let callable: PickleValue
    public let arguments: [PickleValue]
    public let isNewObject: Bool
    public var state: PickleValue?
    public init(callable: PickleValue, arguments: [PickleValue], isNewObject: Bool = false, state: PickleValue? = nil) {
        self.callable = callable; self.arguments = arguments; self.isNewObject = isNewObject; self.state = state
    }

    /// The `module.name` of the callable.
    public var callableName: String {
        if case let .global(module, name) = callable { return "\(module).\(name)" }
        return "\(callable)"
    }
}

/// A pickle rlbench refused: a forbidden global, an unsupported opcode, damaged data or a limit exceeded.
public struct PickleError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A strict, bounded pickle reader: a small virtual machine for the opcodes of protocols 2 to 5 that `torch.save`
/// and cloudpickle use for state dicts and Gymnasium spaces. It never imports or calls anything; a `GLOBAL` outside
/// `allowedGlobals` is refused with its name, as is every opcode it does not know. The stack, the memo, the nesting of
/// values and the number of operations are bounded, and a list, dict or object may not change once it is inside
/// another value (no cycles), so a hostile pickle ends in an error, not a hang, a crash or unbounded memory.
public struct PickleReader {
    public static let maxOperations = 10_000_000
    public static let maxStack = 1_000_000
    public static let maxDepth = 64
    public static let maxMemo = 1_000_000

    /// The globals (`module.name`) a pickle may name.
    public let allowedGlobals: Set<String>
    /// `collections.OrderedDict()` is read as a plain dict (the entries keep their order).
    public static let orderedDict = "collections.OrderedDict"

    public init(allowedGlobals: Set<String>) { self.allowedGlobals = allowedGlobals }

    /// The value `data` (`source` names it in errors) unpickles to.
    public func read(_ data: Data, source: String) throws -> PickleValue {
        let b = [UInt8](data)
        var at = 0, operations = 0
        // Each value with its nesting depth (a list's, dict's or object's is kept on it, as it may still grow).
        var stack: [(value: PickleValue, depth: Int)] = []
        var marks: [Int] = []
        var memo: [Int: (value: PickleValue, depth: Int)] = [:]
        func fail(_ m: String) -> PickleError { PickleError("\(source): pickle refused at byte \(at): \(m)") }
        func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, n <= b.count - at else { throw fail("it ends in the middle of an operation (truncated or damaged)") }
            defer { at += n }
            return b[at..<(at + n)]
        }
        func uint(_ n: Int) throws -> Int { try take(n).reversed().reduce(0) { $0 << 8 | Int($1) } }
        func line() throws -> String {
            guard let end = b[at...].firstIndex(of: 0x0A) else { throw fail("a GLOBAL name has no end of line") }
            defer { at = end + 1 }
            return String(decoding: b[at..<end], as: UTF8.self)
        }
        func container(_ v: PickleValue) -> PickleContainer? {
            switch v {
            case let .list(l): l
            case let .dict(d): d
            case let .object(o): o
            default: nil
            }
        }
        func depth(_ item: (value: PickleValue, depth: Int)) -> Int { container(item.value)?.depth ?? item.depth }
        func pop() throws -> (value: PickleValue, depth: Int) {
            guard stack.count > (marks.last ?? 0), let v = stack.popLast() else { throw fail("the stack is empty (damaged pickle)") }
            return v
        }
        func popMark() throws -> [(value: PickleValue, depth: Int)] {
            guard let mark = marks.popLast(), mark <= stack.count else { throw fail("an operation needs a MARK that is missing") }
            defer { stack.removeSubrange(mark...) }
            return Array(stack[mark...])
        }
        func push(_ v: PickleValue, depth: Int = 0) throws {
            guard stack.count < Self.maxStack else { throw fail("more than \(Self.maxStack) values on the stack") }
            stack.append((v, depth))
        }
        /// The depth of a value made of `children`, which are sealed: they can no longer change.
        func enclose(_ children: [(value: PickleValue, depth: Int)]) throws -> Int {
            let d = 1 + children.map(depth).reduce(0, max)
            guard d <= Self.maxDepth else { throw fail("values nested deeper than \(Self.maxDepth)") }
            for child in children { container(child.value)?.sealed = true }
            return d
        }
        /// Adds `children` to the open container on top of the stack.
        func grow(_ children: [(value: PickleValue, depth: Int)], _ what: String) throws -> PickleValue {
            guard let top = stack.last, let c = container(top.value), stack.count > (marks.last ?? 0) else {
                throw fail("\(what) on something that is not a list, dict or object")
            }
            guard !c.sealed else { throw fail("\(what) changes a value already inside another (cyclic or shared structure)") }
            c.depth = max(c.depth, try enclose(children))
            return top.value
        }
        func global(_ module: String, _ name: String) throws -> PickleValue {
            guard allowedGlobals.contains("\(module).\(name)") else {
                throw fail("it names the global \(module).\(name), which is not among the ones rlbench reads")
            }
            return .global(module: module, name: name)
        }
        func memoize(_ key: Int) throws {
            guard let top = stack.last else { throw fail("nothing to memoize") }
            guard memo.count < Self.maxMemo else { throw fail("more than \(Self.maxMemo) memo entries") }
            memo[key] = top
        }
        func setItems(_ items: [(value: PickleValue, depth: Int)]) throws {
            guard case let .dict(d) = try grow(items, "SETITEMS"), items.count % 2 == 0 else { throw fail("SETITEMS on something that is not a dict") }
            for i in stride(from: 0, to: items.count, by: 2) { d.entries.append((items[i].value, items[i + 1].value)) }
        }
        func string(_ bytes: ArraySlice<UInt8>) throws -> String {
            guard let s = String(bytes: bytes, encoding: .utf8) else { throw fail("a string is not valid UTF-8") }
            return s
        }
        func tuple(_ items: [(value: PickleValue, depth: Int)]) throws {
            try push(.tuple(items.map(\.value)), depth: try enclose(items))
        }

        while true {
            operations += 1
            guard operations <= Self.maxOperations else { throw fail("more than \(Self.maxOperations) operations") }
            let opcode = try take(1).first!
            switch opcode {
            case 0x80: _ = try take(1)                                    // PROTO
            case 0x95: _ = try take(8)                                    // FRAME (a length hint)
            case 0x2E:                                                    // STOP
                guard stack.count == 1, marks.isEmpty else { throw fail("STOP with \(stack.count) values on the stack") }
                return stack[0].value
            case 0x28:                                                    // MARK
                guard marks.count < Self.maxDepth else { throw fail("marks nested deeper than \(Self.maxDepth)") }
                marks.append(stack.count)
            case 0x30: _ = try pop()                                      // POP
            case 0x31: _ = try popMark()                                  // POP_MARK
            case 0x4E: try push(.none)                                    // NONE
            case 0x88: try push(.bool(true))                              // NEWTRUE
            case 0x89: try push(.bool(false))                             // NEWFALSE
            case 0x4B: try push(.int(try uint(1)))                        // BININT1
            case 0x4D: try push(.int(try uint(2)))                        // BININT2
            case 0x4A: try push(.int(Int(Int32(truncatingIfNeeded: try uint(4)))))  // BININT
            case 0x8A:                                                    // LONG1
                let n = try uint(1)
                let bytes = try take(n)
                guard n <= 8 else { try push(.largeInt(Array(bytes))); continue }
                var v = bytes.reversed().reduce(0) { $0 << 8 | Int($1) }
                if n > 0, n < 8, bytes.last! & 0x80 != 0 { v -= 1 << (8 * n) }
                try push(.int(v))
            case 0x47:                                                    // BINFLOAT (big-endian)
                try push(.float(Double(bitPattern: try take(8).reduce(0) { $0 << 8 | UInt64($1) })))
            case 0x58: try push(.string(try string(try take(try uint(4)))))   // BINUNICODE
            case 0x8C: try push(.string(try string(try take(try uint(1)))))   // SHORT_BINUNICODE
            case 0x8D: try push(.string(try string(try take(try uint(8)))))   // BINUNICODE8
            case 0x42: try push(.bytes(Array(try take(try uint(4)))))         // BINBYTES
            case 0x43: try push(.bytes(Array(try take(try uint(1)))))         // SHORT_BINBYTES
            case 0x8E: try push(.bytes(Array(try take(try uint(8)))))         // BINBYTES8
            case 0x96: try push(.bytearray(Array(try take(try uint(8)))))     // BYTEARRAY8
            case 0x29: try push(.tuple([]), depth: 1)                     // EMPTY_TUPLE
            case 0x74: try tuple(try popMark())                           // TUPLE
            case 0x85: try tuple([try pop()])                             // TUPLE1
            case 0x86: let y = try pop(), x = try pop(); try tuple([x, y])                  // TUPLE2
            case 0x87: let z = try pop(), y = try pop(), x = try pop(); try tuple([x, y, z])  // TUPLE3
            case 0x5D: try push(.list(PickleList()))                      // EMPTY_LIST
            case 0x6C:                                                    // LIST
                let items = try popMark(), l = PickleList(items.map(\.value))
                l.depth = try enclose(items)
                try push(.list(l))
            case 0x61, 0x65:                                              // APPEND, APPENDS
                let items = opcode == 0x61 ? [try pop()] : try popMark()
                guard case let .list(l) = try grow(items, "APPEND") else { throw fail("APPEND to something that is not a list") }
                l.items += items.map(\.value)
            case 0x7D: try push(.dict(PickleDict()))                      // EMPTY_DICT
            case 0x64:                                                    // DICT
                let items = try popMark()
                try push(.dict(PickleDict()))
                try setItems(items)
            case 0x73: let v = try pop(), k = try pop(); try setItems([k, v])  // SETITEM
            case 0x75: try setItems(try popMark())                        // SETITEMS
            case 0x63:                                                    // GLOBAL
                let module = try line(), name = try line()
                try push(try global(module, name))
            case 0x93:                                                    // STACK_GLOBAL
                let name = try pop().value, module = try pop().value
                guard let m = module.string, let n = name.string else { throw fail("STACK_GLOBAL of \(module), \(name)") }
                try push(try global(m, n))
            case 0x52, 0x81:                                              // REDUCE, NEWOBJ
                let arguments = try pop(), callable = try pop().value
                guard case let .global(module, name) = callable, let args = arguments.value.tuple else {
                    throw fail("a call of \(callable) with \(arguments.value): only calls of allowed globals with a tuple are read")
                }
                let d = try enclose([arguments])
                if "\(module).\(name)" == Self.orderedDict, args.isEmpty {
                    try push(.dict(PickleDict()))
                } else {
                    let o = PickleObject(callable: callable, arguments: args, isNewObject: opcode == 0x81)
                    o.depth = d
                    try push(.object(o))
                }
            case 0x62:                                                    // BUILD
                let state = try pop()
                switch try grow([state], "BUILD") {
                case let .object(o) where o.state == nil: o.state = state.value
                case .dict: break  // attributes of an OrderedDict (a state dict's `_metadata`), not entries
                default: throw fail("BUILD on something that is not a new object")
                }
            case 0x51:                                                    // BINPERSID
                let id = try pop()
                try push(.persistent(id.value), depth: try enclose([id]))
            case 0x71: try memoize(try uint(1))                           // BINPUT
            case 0x72: try memoize(try uint(4))                           // LONG_BINPUT
            case 0x94: try memoize(memo.count)                            // MEMOIZE
            case 0x68, 0x6A:                                              // BINGET, LONG_BINGET
                let key = try uint(opcode == 0x68 ? 1 : 4)
                guard let v = memo[key] else { throw fail("BINGET \(key) of nothing memoized") }
                try push(v.value, depth: v.depth)
            default:
                throw fail(String(format: "opcode 0x%02X%@ is not supported", opcode,
                                  (0x20..<0x7F).contains(opcode) ? " ('\(Character(UnicodeScalar(opcode)))')" : ""))
            }
        }
    }
}

/// Writes a `PickleValue` as a pickle (protocol 2 opcodes, plus `SHORT_BINBYTES`/`BINBYTES` for bytes and `BYTEARRAY8`
/// for a bytearray, which Python reads whatever protocol the pickle declares), without memoization: what `torch.load(weights_only=True)` and `pickle.loads` accept.
public struct PickleWriter {
    public static func encode(_ value: PickleValue, protocol version: UInt8 = 2) -> Data {
        var out: [UInt8] = [0x80, version]
        write(value, to: &out)
        out.append(0x2E)
        return Data(out)
    }

    private static func le(_ v: Int, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

    private static func write(_ value: PickleValue, to out: inout [UInt8]) {
        switch value {
        case .none: out.append(0x4E)
        case let .bool(b): out.append(b ? 0x88 : 0x89)
        case let .int(i):
            if (0..<256).contains(i) { out += [0x4B, UInt8(i)] }
            else if (0..<65536).contains(i) { out += [0x4D] + le(i, 2) }
            else if (Int(Int32.min)...Int(Int32.max)).contains(i) { out += [0x4A] + le(i, 4) }
            else { out += [0x8A, 8] + le(i, 8) }
        case let .largeInt(b): out += [0x8A, UInt8(min(b.count, 255))] + b.prefix(255)
        case let .float(x): out += [0x47] + (0..<8).reversed().map { UInt8(truncatingIfNeeded: x.bitPattern >> (8 * UInt64($0))) }
        case let .string(s): let u = Array(s.utf8); out += [0x58] + le(u.count, 4) + u
        case let .bytes(b): out += (b.count < 256 ? [0x43, UInt8(b.count)] : [0x42] + le(b.count, 4)) + b
        case let .bytearray(b): out += [0x96] + le(b.count, 8) + b
        case let .tuple(items):
            switch items.count {
            case 0: out.append(0x29)
            case 1...3: for v in items { write(v, to: &out) }; out.append([0x85, 0x86, 0x87][items.count - 1])
            default: out.append(0x28); for v in items { write(v, to: &out) }; out.append(0x74)
            }
        case let .list(l):
            out.append(0x5D)
            if !l.items.isEmpty { out.append(0x28); for v in l.items { write(v, to: &out) }; out.append(0x65) }
        case let .dict(d):
            out.append(0x7D)
            if !d.entries.isEmpty {
                out.append(0x28)
                for (k, v) in d.entries { write(k, to: &out); write(v, to: &out) }
                out.append(0x75)
            }
        case let .global(module, name): out += [0x63] + Array("\(module)\n\(name)\n".utf8)
        case let .object(o):
            write(o.callable, to: &out)
            write(.tuple(o.arguments), to: &out)
            out.append(o.isNewObject ? 0x81 : 0x52)
            if let state = o.state { write(state, to: &out); out.append(0x62) }
        case let .persistent(id): write(id, to: &out); out.append(0x51)
        }
    }
}
