import Kernel

/// The one list of built-in plugins. A host program registers its own types next to these:
///
///     var registry = Builtins.registry()
///     registry.register(MyPlugin.self)
public enum Builtins {
    public static let types: [any Plugin.Type] = [
        // pipeline
        AccessLog.self,
        MetricsPlugin.self,
        StatusPage.self,
        TracingPlugin.self,
        APIKeyAuth.self,
        JWTAuth.self,
        Validation.self,
        RateLimit.self,
        Budget.self,
        SpendLedgerPlugin.self,
        AdminAPI.self,
        ResponseCache.self,
        ResponseStore.self,
        ExternalPolicy.self,
        PIIGuard.self,
        ContentFilter.self,
        Moderation.self,
        Router.self,
        // providers
        OpenAICompatibleProvider.self,
        OpenAIProvider.self,
        AzureOpenAIProvider.self,
        AnthropicProvider.self,
        BedrockProvider.self,
        GeminiProvider.self,
        VertexAIProvider.self,
    ]

    public static func registry() -> PluginRegistry {
        var registry = PluginRegistry()
        registry.register(types)
        return registry
    }
}
