import Kernel

/// The admin API described as an OpenAPI 3.1 document, served at `GET {prefix}/openapi.json`.
/// The routes' paths carry the configured prefix. Kept beside `AdminAPI`, whose switch is the
/// implementation; the integration test calls every route listed here.
enum AdminOpenAPI {
    static func document(prefix: String) -> JSON {
        (try? JSON.parse(template.replacingOccurrences(of: "{PREFIX}", with: prefix))) ?? .object()
    }

    private static let template = #"""
{
 "openapi": "3.1.0",
 "info": {
  "title": "Sluice admin API",
  "version": "1",
  "description": "Managed keys, teams and spend. Every route needs one of admin-api's admin_keys as `Authorization: Bearer KEY`."
 },
 "security": [
  {
   "adminKey": []
  }
 ],
 "paths": {
  "{PREFIX}/keys": {
   "get": {
    "operationId": "listKeys",
    "summary": "List managed keys",
    "responses": {
     "200": {
      "description": "The keys",
      "content": {
       "application/json": {
        "schema": {
         "type": "object",
         "properties": {
          "data": {
           "type": "array",
           "items": {
            "$ref": "#/components/schemas/Key"
           }
          }
         },
         "required": [
          "data"
         ]
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     },
     "403": {
      "$ref": "#/components/responses/Error"
     }
    }
   },
   "post": {
    "operationId": "createKey",
    "summary": "Create a managed key; the key itself is returned this once",
    "requestBody": {
     "required": true,
     "content": {
      "application/json": {
       "schema": {
        "$ref": "#/components/schemas/KeyCreate"
       }
      }
     }
    },
    "responses": {
     "201": {
      "description": "The key, with its secret",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/KeyWithSecret"
        }
       }
      }
     },
     "409": {
      "$ref": "#/components/responses/Error"
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     },
     "403": {
      "$ref": "#/components/responses/Error"
     }
    }
   }
  },
  "{PREFIX}/keys/{name}": {
   "parameters": [
    {
     "name": "name",
     "in": "path",
     "required": true,
     "schema": {
      "type": "string"
     }
    }
   ],
   "get": {
    "operationId": "getKey",
    "summary": "Show a key",
    "responses": {
     "200": {
      "description": "The key",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Key"
        }
       }
      }
     },
     "404": {
      "$ref": "#/components/responses/Error"
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     },
     "403": {
      "$ref": "#/components/responses/Error"
     }
    }
   },
   "patch": {
    "operationId": "updateKey",
    "summary": "Change a key's team, models, expiry, disabled flag or budget",
    "requestBody": {
     "required": true,
     "content": {
      "application/json": {
       "schema": {
        "$ref": "#/components/schemas/KeyUpdate"
       }
      }
     }
    },
    "responses": {
     "200": {
      "description": "The key",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Key"
        }
       }
      }
     },
     "404": {
      "$ref": "#/components/responses/Error"
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     },
     "403": {
      "$ref": "#/components/responses/Error"
     }
    }
   },
   "delete": {
    "operationId": "revokeKey",
    "summary": "Revoke (delete) a key",
    "responses": {
     "200": {
      "description": "Deleted",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Deleted"
        }
       }
      }
     },
     "404": {
      "$ref": "#/components/responses/Error"
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     },
     "403": {
      "$ref": "#/components/responses/Error"
     }
    }
   }
  },
  "{PREFIX}/keys/{name}/rotate": {
   "parameters": [
    {
     "name": "name",
     "in": "path",
     "required": true,
     "schema": {
      "type": "string"
     }
    }
   ],
   "post": {
    "operationId": "rotateKey",
    "summary": "Give a key a new secret; the old one stays valid for grace_period_s",
    "requestBody": {
     "required": false,
     "content": {
      "application/json": {
       "schema": {
        "type": "object",
        "properties": {
         "grace_period_s": {
          "type": "number",
          "minimum": 0,
          "maximum": 31622400
         }
        },
        "additionalProperties": false
       }
      }
     }
    },
    "responses": {
     "200": {
      "description": "The key, with its new secret",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/KeyWithSecret"
        }
       }
      }
     },
     "404": {
      "$ref": "#/components/responses/Error"
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     },
     "403": {
      "$ref": "#/components/responses/Error"
     }
    }
   }
  },
  "{PREFIX}/teams": {
   "get": {
    "operationId": "listTeams",
    "summary": "List teams",
    "responses": {
     "200": {
      "description": "The teams",
      "content": {
       "application/json": {
        "schema": {
         "type": "object",
         "properties": {
          "data": {
           "type": "array",
           "items": {
            "$ref": "#/components/schemas/Team"
           }
          }
         },
         "required": [
          "data"
         ]
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     },
     "403": {
      "$ref": "#/components/responses/Error"
     }
    }
   },
   "post": {
    "operationId": "createTeam",
    "summary": "Create a team",
    "requestBody": {
     "required": true,
     "content": {
      "application/json": {
       "schema": {
        "type": "object",
        "properties": {
         "name": {
          "type": "string"
         },
         "budget_usd": {
          "type": [
           "number",
           "null"
          ],
          "minimum": 0
         }
        },
        "required": [
         "name"
        ],
        "additionalProperties": false
       }
      }
     }
    },
    "responses": {
     "201": {
      "description": "The team",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Team"
        }
       }
      }
     },
     "409": {
      "$ref": "#/components/responses/Error"
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     },
     "403": {
      "$ref": "#/components/responses/Error"
     }
    }
   }
  },
  "{PREFIX}/teams/{name}": {
   "parameters": [
    {
     "name": "name",
     "in": "path",
     "required": true,
     "schema": {
      "type": "string"
     }
    }
   ],
   "get": {
    "operationId": "getTeam",
    "summary": "Show a team",
    "responses": {
     "200": {
      "description": "The team",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Team"
        }
       }
      }
     },
     "404": {
      "$ref": "#/components/responses/Error"
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     },
     "403": {
      "$ref": "#/components/responses/Error"
     }
    }
   },
   "patch": {
    "operationId": "updateTeam",
    "summary": "Change a team's budget",
    "requestBody": {
     "required": true,
     "content": {
      "application/json": {
       "schema": {
        "type": "object",
        "properties": {
         "budget_usd": {
          "type": [
           "number",
           "null"
          ],
          "minimum": 0
         }
        },
        "additionalProperties": false
       }
      }
     }
    },
    "responses": {
     "200": {
      "description": "The team",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Team"
        }
       }
      }
     },
     "404": {
      "$ref": "#/components/responses/Error"
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     },
     "403": {
      "$ref": "#/components/responses/Error"
     }
    }
   },
   "delete": {
    "operationId": "deleteTeam",
    "summary": "Delete a team no key belongs to",
    "responses": {
     "200": {
      "description": "Deleted",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Deleted"
        }
       }
      }
     },
     "404": {
      "$ref": "#/components/responses/Error"
     },
     "409": {
      "$ref": "#/components/responses/Error"
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     },
     "403": {
      "$ref": "#/components/responses/Error"
     }
    }
   }
  },
  "{PREFIX}/spend": {
   "get": {
    "operationId": "getSpend",
    "summary": "Spend totals from the ledger",
    "parameters": [
     {
      "name": "group_by",
      "in": "query",
      "required": false,
      "schema": {
       "type": "string",
       "enum": [
        "key",
        "team",
        "model"
       ]
      }
     },
     {
      "name": "from",
      "in": "query",
      "required": false,
      "description": "ISO 8601 time (inclusive)",
      "schema": {
       "type": "string"
      }
     },
     {
      "name": "to",
      "in": "query",
      "required": false,
      "description": "ISO 8601 time (exclusive)",
      "schema": {
       "type": "string"
      }
     }
    ],
    "responses": {
     "200": {
      "description": "Totals: `total` without group_by, `data` with it",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Spend"
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     },
     "403": {
      "$ref": "#/components/responses/Error"
     }
    }
   }
  },
  "{PREFIX}/openapi.json": {
   "get": {
    "operationId": "getOpenAPI",
    "summary": "This document",
    "responses": {
     "200": {
      "description": "The OpenAPI 3.1 document",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     },
     "403": {
      "$ref": "#/components/responses/Error"
     }
    }
   }
  }
 },
 "components": {
  "securitySchemes": {
   "adminKey": {
    "type": "http",
    "scheme": "bearer"
   }
  },
  "responses": {
   "Error": {
    "description": "An error in OpenAI's shape",
    "content": {
     "application/json": {
      "schema": {
       "$ref": "#/components/schemas/Error"
      }
     }
    }
   }
  },
  "schemas": {
   "Error": {
    "type": "object",
    "properties": {
     "error": {
      "type": "object",
      "properties": {
       "message": {
        "type": "string"
       },
       "type": {
        "type": "string"
       },
       "param": {
        "type": [
         "string",
         "null"
        ]
       },
       "code": {
        "type": [
         "string",
         "null"
        ]
       }
      },
      "required": [
       "message",
       "type"
      ]
     }
    },
    "required": [
     "error"
    ]
   },
   "Key": {
    "type": "object",
    "properties": {
     "name": {
      "type": "string"
     },
     "team": {
      "type": [
       "string",
       "null"
      ]
     },
     "models": {
      "type": "array",
      "items": {
       "type": "string"
      }
     },
     "expires_at": {
      "type": [
       "string",
       "null"
      ],
      "format": "date-time"
     },
     "disabled": {
      "type": "boolean"
     },
     "budget_usd": {
      "type": [
       "number",
       "null"
      ],
      "minimum": 0
     },
     "created_at": {
      "type": "string",
      "format": "date-time"
     },
     "updated_at": {
      "type": "string",
      "format": "date-time"
     },
     "previous_key_valid_until": {
      "type": "string",
      "format": "date-time"
     }
    },
    "required": [
     "name",
     "team",
     "models",
     "expires_at",
     "disabled",
     "budget_usd",
     "created_at",
     "updated_at"
    ]
   },
   "KeyWithSecret": {
    "allOf": [
     {
      "$ref": "#/components/schemas/Key"
     },
     {
      "type": "object",
      "properties": {
       "key": {
        "type": "string",
        "description": "The key itself: shown this once"
       }
      },
      "required": [
       "key"
      ]
     }
    ]
   },
   "KeyCreate": {
    "type": "object",
    "properties": {
     "name": {
      "type": "string"
     },
     "team": {
      "type": [
       "string",
       "null"
      ]
     },
     "models": {
      "type": "array",
      "items": {
       "type": "string"
      }
     },
     "expires_at": {
      "type": [
       "string",
       "null"
      ],
      "format": "date-time"
     },
     "disabled": {
      "type": "boolean"
     },
     "budget_usd": {
      "type": [
       "number",
       "null"
      ],
      "minimum": 0
     }
    },
    "required": [
     "name"
    ],
    "additionalProperties": false
   },
   "KeyUpdate": {
    "type": "object",
    "properties": {
     "team": {
      "type": [
       "string",
       "null"
      ]
     },
     "models": {
      "type": "array",
      "items": {
       "type": "string"
      }
     },
     "expires_at": {
      "type": [
       "string",
       "null"
      ],
      "format": "date-time"
     },
     "disabled": {
      "type": "boolean"
     },
     "budget_usd": {
      "type": [
       "number",
       "null"
      ],
      "minimum": 0
     }
    },
    "additionalProperties": false
   },
   "Team": {
    "type": "object",
    "properties": {
     "name": {
      "type": "string"
     },
     "budget_usd": {
      "type": [
       "number",
       "null"
      ]
     },
     "created_at": {
      "type": "string",
      "format": "date-time"
     },
     "updated_at": {
      "type": "string",
      "format": "date-time"
     }
    },
    "required": [
     "name",
     "budget_usd",
     "created_at",
     "updated_at"
    ]
   },
   "Deleted": {
    "type": "object",
    "properties": {
     "name": {
      "type": "string"
     },
     "deleted": {
      "type": "boolean"
     }
    },
    "required": [
     "name",
     "deleted"
    ]
   },
   "Spend": {
    "type": "object",
    "properties": {
     "group_by": {
      "type": [
       "string",
       "null"
      ]
     },
     "from": {
      "type": [
       "string",
       "null"
      ],
      "format": "date-time"
     },
     "to": {
      "type": [
       "string",
       "null"
      ],
      "format": "date-time"
     },
     "total": {
      "type": "object",
      "properties": {
       "requests": {
        "type": "integer"
       },
       "input_tokens": {
        "type": "integer"
       },
       "output_tokens": {
        "type": "integer"
       },
       "cached_input_tokens": {
        "type": "integer"
       },
       "cost_usd": {
        "type": "number"
       },
       "cost_nano_usd": {
        "type": "integer"
       }
      },
      "required": [
       "requests",
       "cost_usd",
       "cost_nano_usd"
      ]
     },
     "data": {
      "type": "array",
      "items": {
       "allOf": [
        {
         "type": "object",
         "properties": {
          "requests": {
           "type": "integer"
          },
          "input_tokens": {
           "type": "integer"
          },
          "output_tokens": {
           "type": "integer"
          },
          "cached_input_tokens": {
           "type": "integer"
          },
          "cost_usd": {
           "type": "number"
          },
          "cost_nano_usd": {
           "type": "integer"
          }
         },
         "required": [
          "requests",
          "cost_usd",
          "cost_nano_usd"
         ]
        },
        {
         "type": "object",
         "properties": {
          "key": {
           "type": [
            "string",
            "null"
           ]
          },
          "team": {
           "type": [
            "string",
            "null"
           ]
          },
          "model": {
           "type": [
            "string",
            "null"
           ]
          }
         }
        }
       ]
      }
     }
    },
    "required": [
     "group_by",
     "from",
     "to"
    ]
   }
  }
 }
}
"""#
}
