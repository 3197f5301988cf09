#include "store/s3_xml.h"

#include <expat.h>

#include <memory>

#include "common/error.h"

namespace sparkv {

namespace {

constexpr size_t kMaxDocumentBytes = size_t{64} << 20;
constexpr size_t kMaxDepth = 32;

// Expat calls back into this while it parses; the open elements form a stack of pointers into
// the tree being built.
struct TreeBuilder {
    XmlElement root;
    std::vector<XmlElement*> open;
    bool has_root = false;
    bool too_deep = false;
    XML_Parser parser = nullptr;

    static void on_start(void* data, const XML_Char* name, const XML_Char**) {
        auto* self = static_cast<TreeBuilder*>(data);
        if (self->open.size() >= kMaxDepth) {
            self->too_deep = true;
            XML_StopParser(self->parser, XML_FALSE);
            return;
        }
        XmlElement* element;
        if (self->open.empty()) {
            self->has_root = true;
            element = &self->root;
        } else {
            element = &self->open.back()->children.emplace_back();
        }
        element->name = name;
        self->open.push_back(element);
    }
    static void on_end(void* data, const XML_Char*) {
        auto* self = static_cast<TreeBuilder*>(data);
        if (!self->open.empty()) self->open.pop_back();
    }
    static void on_text(void* data, const XML_Char* text, int length) {
        auto* self = static_cast<TreeBuilder*>(data);
        if (!self->open.empty()) self->open.back()->text.append(text, static_cast<size_t>(length));
    }
};

}  // namespace

const XmlElement* XmlElement::child(std::string_view child_name) const {
    for (const auto& c : children)
        if (c.name == child_name) return &c;
    return nullptr;
}

std::string XmlElement::child_text(std::string_view child_name) const {
    const XmlElement* c = child(child_name);
    return c ? c->text : std::string();
}

std::vector<const XmlElement*> XmlElement::children_named(std::string_view child_name) const {
    std::vector<const XmlElement*> out;
    for (const auto& c : children)
        if (c.name == child_name) out.push_back(&c);
    return out;
}

XmlElement parse_xml(std::string_view text) {
    if (text.size() > kMaxDocumentBytes)
        fail("XML document of {} bytes is larger than the {} accepted", text.size(),
             kMaxDocumentBytes);
    std::unique_ptr<XML_ParserStruct, decltype(&XML_ParserFree)> parser(XML_ParserCreate("UTF-8"),
                                                                        &XML_ParserFree);
    if (!parser) fail("cannot create an XML parser");
    TreeBuilder builder;
    builder.parser = parser.get();
    XML_SetUserData(parser.get(), &builder);
    XML_SetElementHandler(parser.get(), &TreeBuilder::on_start, &TreeBuilder::on_end);
    XML_SetCharacterDataHandler(parser.get(), &TreeBuilder::on_text);
    const auto status =
        XML_Parse(parser.get(), text.data(), static_cast<int>(text.size()), XML_TRUE);
    if (builder.too_deep) fail("XML document nests elements deeper than {}", kMaxDepth);
    if (status != XML_STATUS_OK)
        fail("malformed XML at line {}, column {}: {}", XML_GetCurrentLineNumber(parser.get()),
             XML_GetCurrentColumnNumber(parser.get()),
             XML_ErrorString(XML_GetErrorCode(parser.get())));
    if (!builder.has_root) fail("XML document has no element");
    return std::move(builder.root);
}

std::optional<S3ErrorBody> parse_s3_error(std::string_view text) {
    if (text.find("<Error") == std::string_view::npos) return std::nullopt;
    try {
        const XmlElement root = parse_xml(text);
        if (root.name != "Error") return std::nullopt;
        return S3ErrorBody{root.child_text("Code"), root.child_text("Message")};
    } catch (const Error&) {
        return std::nullopt;
    }
}

std::string xml_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

}  // namespace sparkv
