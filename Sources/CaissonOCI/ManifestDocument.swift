import Foundation

/// A manifest response body, decoded according to its `Content-Type` and checked against it.
public enum ManifestDocument: Hashable, Sendable {
    case manifest(Manifest)
    case index(Index)

    /// The document's media type (from the body, or from `Content-Type`, or inferred from the shape).
    public var mediaType: String {
        switch self {
        case let .manifest(m): m.mediaType ?? MediaType.ociManifest
        case let .index(i): i.mediaType ?? MediaType.ociIndex
        }
    }

    /// Content types that say nothing about which document it is.
    static let genericContentTypes: Set<String> = ["", "application/json", "text/plain", "application/octet-stream", "binary/octet-stream"]

    /// Decodes a manifest or index from the exact bytes the registry sent (hash those same bytes).
    ///
    /// * `Content-Type` parameters are ignored (`…+json; charset=utf-8`).
    /// * A body `mediaType` that differs from a specific `Content-Type` is rejected (distribution spec).
    /// * Docker schema 1 is rejected with a clear message.
    /// * With no useful `Content-Type` (`nil`, `application/json`, `text/plain`) the body's
    ///   `mediaType` decides, else its shape (`manifests` → index; `config` + `layers` → manifest).
    /// * A body with both `manifests` and `config`/`layers` is ambiguous and rejected (CVE-2021-41190).
    /// * Unknown fields are ignored; annotations never break parsing.
    public static func decode(data: Data, contentType: String?) throws(OCIError) -> ManifestDocument {
        let declared = MediaType.essence(contentType ?? "")
        if MediaType.isSchema1(declared) { throw OCIError.schema1Unsupported }

        let probe: Probe
        do {
            probe = try JSONDecoder().decode(Probe.self, from: data)
        } catch let DecodingError.typeMismatch(_, context) where context.codingPath.isEmpty {
            throw OCIError.invalidManifest("the body is JSON but not an object")
        } catch {
            throw OCIError.invalidManifest("the body is not valid JSON (\(data.count) bytes\(preview(data)))")
        }

        if probe.mediaTypePresent, probe.mediaType == nil {
            throw OCIError.invalidManifest("'mediaType' is not a string")
        }
        let bodyType = probe.mediaType.map(MediaType.essence)
        if let bodyType, MediaType.isSchema1(bodyType) { throw OCIError.schema1Unsupported }
        if probe.schemaVersion == 1 || probe.hasFsLayers { throw OCIError.schema1Unsupported }

        let hasManifests = probe.hasManifests
        let hasImageFields = probe.hasConfig || probe.hasLayers
        if hasManifests && hasImageFields {
            throw OCIError.invalidManifest("the document has both 'manifests' (index) and 'config'/'layers' (manifest); refusing an ambiguous document")
        }

        let effective: String
        if genericContentTypes.contains(declared) {
            if let bodyType {
                effective = bodyType
            } else if hasManifests {
                effective = MediaType.ociIndex
            } else if hasImageFields {
                effective = MediaType.ociManifest
            } else {
                throw OCIError.invalidManifest("cannot tell a manifest from an index: no mediaType, no 'manifests', no 'config'/'layers'")
            }
        } else {
            if let bodyType, bodyType != declared {
                throw OCIError.mediaTypeMismatch(contentType: declared, body: bodyType)
            }
            effective = declared
        }

        guard let version = probe.schemaVersion else {
            throw OCIError.invalidManifest("missing or non-numeric 'schemaVersion'")
        }
        guard version == 2 else { throw OCIError.invalidManifest("schemaVersion \(version) is not supported (expected 2)") }

        if MediaType.isManifest(effective) {
            guard !hasManifests else {
                throw OCIError.invalidManifest("'\(effective)' declared but the body is an index (it has 'manifests')")
            }
            var manifest = try decodeJSON(Manifest.self, from: data, what: "manifest")
            if manifest.mediaType == nil { manifest.mediaType = effective }
            return .manifest(manifest)
        }
        if MediaType.isIndex(effective) {
            guard !hasImageFields else {
                throw OCIError.invalidManifest("'\(effective)' declared but the body is a manifest (it has 'config'/'layers')")
            }
            var index = try decodeJSON(Index.self, from: data, what: "index")
            if index.mediaType == nil { index.mediaType = effective }
            return .index(index)
        }
        throw OCIError.unsupportedMediaType(effective, context: "a manifest (accepted: \(MediaType.manifestAccept.joined(separator: ", ")))")
    }

    /// What the body says about itself, read before choosing how to decode it.
    private struct Probe: Decodable {
        var mediaType: String?
        var mediaTypePresent = false
        var schemaVersion: Int?
        var hasManifests = false
        var hasConfig = false
        var hasLayers = false
        var hasFsLayers = false

        private struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(_ string: String) { stringValue = string }
            init?(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: Key.self)
            mediaTypePresent = c.contains(Key("mediaType"))
            mediaType = try? c.decodeIfPresent(String.self, forKey: Key("mediaType"))
            schemaVersion = try? c.decodeIfPresent(Int.self, forKey: Key("schemaVersion"))
            hasManifests = c.contains(Key("manifests"))
            hasConfig = c.contains(Key("config"))
            hasLayers = c.contains(Key("layers"))
            hasFsLayers = c.contains(Key("fsLayers"))
        }
    }

    private static func decodeJSON<T: Decodable>(_ type: T.Type, from data: Data, what: String) throws(OCIError) -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            throw OCIError.invalidManifest("\(what): \(describe(error))")
        } catch {
            throw OCIError.invalidManifest("\(what): \(error)")
        }
    }

    private static func preview(_ data: Data) -> String {
        guard !data.isEmpty else { return "" }
        let head = String(decoding: data.prefix(32), as: UTF8.self)
        return ", starting '\(printable(head, limit: 32))'"
    }
}

/// A one-line account of a decoding error: where (`layers[1].digest`) and what.
func describe(_ error: DecodingError) -> String {
    func path(_ keys: [any CodingKey]) -> String {
        var text = ""
        for key in keys {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return text.isEmpty ? "the document" : text
    }
    switch error {
    case let .keyNotFound(key, context):
        let parent = context.codingPath.isEmpty ? "" : " in \(path(context.codingPath))"
        return "missing field '\(key.stringValue)'\(parent)"
    case let .typeMismatch(type, context):
        return "\(path(context.codingPath)): expected \(readable(type))"
    case let .valueNotFound(type, context):
        return "\(path(context.codingPath)): expected \(readable(type)), found null"
    case let .dataCorrupted(context):
        return "\(path(context.codingPath)): \(context.debugDescription)"
    @unknown default:
        return "\(error)"
    }
}

private func readable(_ type: Any.Type) -> String {
    switch type {
    case is String.Type: "a string"
    case is Int.Type, is Int64.Type: "an integer"
    case is Bool.Type: "a boolean"
    default: "\(type)".hasPrefix("Array") ? "an array" : (("\(type)".hasPrefix("Dictionary")) ? "an object" : "\(type)")
    }
}
