//! gRPC health and server reflection, as `grpcurl` and Kubernetes probes use them.

mod common;

use common::*;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test]
async fn health_reports_serving_for_the_server_and_the_service_and_not_found_otherwise() {
    let server = TestServer::new().start().await;
    let mut health = HealthClient::new(server.channel().await);
    for service in ["", "hearken.v1.ListeningService"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
    }
    let err = health
        .check(HealthCheckRequest {
            service: "no.Such".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn reflection_lists_the_services_and_serves_the_whole_contract() {
    let server = TestServer::new().start().await;
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let requests = vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "hearken.v1.ListeningService".into(),
            )),
        },
        // Clients such as grpcurl then fetch each dependency by name.
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileByFilename(
                "google/protobuf/timestamp.proto".into(),
            )),
        },
    ];
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        responses.message().await.unwrap().unwrap().message_response
    else {
        panic!()
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in ["hearken.v1.ListeningService", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        responses.message().await.unwrap().unwrap().message_response
    else {
        panic!()
    };
    use prost::Message as _;
    let names: Vec<String> = files
        .file_descriptor_proto
        .iter()
        .map(|bytes| prost_types_name(bytes))
        .collect();
    assert_eq!(names, ["hearken/v1/hearken.proto"]);
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        responses.message().await.unwrap().unwrap().message_response
    else {
        panic!("dependency served")
    };
    let names: Vec<String> = files
        .file_descriptor_proto
        .iter()
        .map(|bytes| prost_types_name(bytes))
        .collect();
    assert_eq!(names, ["google/protobuf/timestamp.proto"]);

    fn prost_types_name(bytes: &[u8]) -> String {
        // Field 1 of FileDescriptorProto is its name.
        #[derive(Clone, PartialEq, prost::Message)]
        struct NameOnly {
            #[prost(string, tag = "1")]
            name: String,
        }
        NameOnly::decode(bytes).unwrap().name
    }
}

#[tokio::test]
async fn reflection_v1alpha_is_served_too() {
    let server = TestServer::new().start().await;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;
    let mut reflection = AlphaClient::new(server.channel().await);
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(AlphaRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let Some(AlphaResponse::ListServicesResponse(list)) =
        responses.message().await.unwrap().unwrap().message_response
    else {
        panic!()
    };
    assert!(
        list.service
            .iter()
            .any(|s| s.name == "hearken.v1.ListeningService")
    );
}
